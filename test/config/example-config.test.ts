// config.example.yaml is the annotated starting point users copy: it must load with the real
// loader, and it must mention every key the schema knows, so a new key cannot ship undocumented.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';

const EXAMPLE_PATH = fileURLToPath(new URL('../../config.example.yaml', import.meta.url));
const example = readFileSync(EXAMPLE_PATH, 'utf8');

/**
 * Schema kinds without keys inside (z.url() and z.int() are string and number formats; a
 * transform is the function half of a z.preprocess or .transform pipe).
 */
const LEAF_TYPES = new Set(['string', 'number', 'boolean', 'enum', 'literal', 'transform']);

/**
 * Every object key reachable from `schema`, found by unwrapping the zod wrappers the config
 * schema uses (optional, default, prefault, nullable, pipes, arrays, unions).
 * Throws on a schema kind it does not know, so a new wrapper cannot silently hide keys.
 */
function schemaKeys(schema: z.ZodType, keys = new Set<string>()): Set<string> {
  if (schema instanceof z.ZodObject) {
    for (const [key, value] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
      keys.add(key);
      schemaKeys(value, keys);
    }
  } else if (
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault ||
    schema instanceof z.ZodNullable
  ) {
    schemaKeys(schema.unwrap() as z.ZodType, keys);
  } else if (schema instanceof z.ZodPipe) {
    schemaKeys(schema.in as z.ZodType, keys);
    schemaKeys(schema.out as z.ZodType, keys);
  } else if (schema instanceof z.ZodArray) {
    schemaKeys(schema.element as z.ZodType, keys);
  } else if (schema instanceof z.ZodUnion) {
    for (const option of schema.options as readonly z.ZodType[]) schemaKeys(option, keys);
  } else if (!LEAF_TYPES.has(schema.def.type)) {
    throw new Error(`schemaKeys: unhandled zod type ${schema.def.type}`);
  }
  return keys;
}

/** True when `key:` starts a line of the example, as a live key or a commented-out one. */
function mentions(text: string, key: string): boolean {
  return new RegExp(`^[ \\t#-]*${key}:`, 'm').test(text);
}

describe('config.example.yaml', () => {
  it('loads with the real loader and normalises to the documented defaults', () => {
    const config = parseConfig(example, EXAMPLE_PATH, { SHOP_DB_PASSWORD: 'example-password', BACKUP_WEBHOOK_URL: 'https://hooks.example.com/services/T000/B000/XXXX' });
    expect(config.timezone).toBe('UTC');
    expect(config.logLevel).toBe('info');
    expect(config.databases.map((d) => d.name)).toEqual(['shop', 'reporting']);

    const [shop, reporting] = config.databases;
    expect(shop?.storage).toEqual({ type: 'local', path: '/var/lib/backup-agent/backups' });
    expect(shop?.compression).toEqual({ algorithm: 'zstd', level: 3 });
    expect(shop?.connection).toMatchObject({ host: '127.0.0.1', port: 3306, socket: undefined, user: 'backup' });
    expect(shop?.connection.password?.reveal()).toBe('example-password');
    expect(shop?.schemas).toEqual(['shop']);
    expect(shop?.dump).toEqual({ binlog_coordinates: 'auto', extra_args: [] });

    expect(reporting?.storage).toEqual({ type: 'local', path: '/var/lib/backup-agent/backups' });
    expect(reporting?.connection).toMatchObject({ host: undefined, socket: '/run/mysqld/mysqld.sock', user: 'backup-agent' });
    expect(reporting?.connection.password).toBeUndefined();
    expect(reporting?.schemas).toBeUndefined();
    expect(reporting?.excludeSchemas).toEqual(['scratch']);
    expect(reporting?.compression).toEqual({ algorithm: 'gzip', level: 6 });
  });

  it('names the password variable it needs: loading without it fails', () => {
    expect(() => parseConfig(example, EXAMPLE_PATH, {})).toThrow(/SHOP_DB_PASSWORD is not set/);
  });

  it('mentions every key of the configuration schema', () => {
    const keys = [...schemaKeys(configSchema)].sort();
    // Guard the walker itself: keys from each level of the schema must be found.
    expect(keys).toEqual(expect.arrayContaining(['databases', 'socket', 'ca_file', 'extra_args', 'sse_kms_key_id', 'credentials_file', 'path']));
    expect(keys.filter((key) => !mentions(example, key))).toEqual([]);
  });

  it('writes no key that the schema does not know', () => {
    const known = schemaKeys(configSchema);
    const written = [...example.matchAll(/^[ \t#-]*([a-z][a-z0-9_]*):(?:\s|$)/gm)].map((m) => m[1] as string);
    expect(written.filter((key) => !known.has(key))).toEqual([]);
  });
});
