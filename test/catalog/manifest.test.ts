// The manifest format: versioned JSON, parsed strictly, serialised stably.
import { describe, expect, it } from 'vitest';
import { MANIFEST_FORMAT, MANIFEST_VERSION, parseManifest, serializeManifest, type Manifest } from '../../src/catalog/manifest.ts';

function manifest(): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id: '20260101T020304.000Z-a1b2c3',
    database: 'shop',
    type: 'dump',
    trigger: 'manual',
    status: 'completed',
    startedAt: '2026-01-01T02:03:04.567Z',
    completedAt: '2026-01-01T02:04:00.000Z',
    sizeBytes: 1234,
    rawSizeBytes: 98765,
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    schemas: ['shop', 'crm'],
    objects: [
      {
        key: 'shop/backups/20260101T020304.000Z-a1b2c3/dump.sql.zst',
        role: 'data',
        sizeBytes: 1234,
        sha256: 'a'.repeat(64),
        compression: 'zstd',
        rawSizeBytes: 98765,
      },
    ],
    binlog: { file: 'mysql-bin.000001', position: 861, gtid: '0-1-3' },
    server: { flavor: 'mariadb', version: '10.11.19-MariaDB', serverId: 1, hostname: 'db1' },
    tool: { name: 'mariadb-dump', version: 'mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)' },
    agent: { version: '0.1.0', hostname: 'backup1' },
  };
}

/** The manifest as plain JSON data, with `edit` applied. */
function json(edit: (m: Record<string, unknown>) => void): string {
  const m = JSON.parse(JSON.stringify(manifest())) as Record<string, unknown>;
  edit(m);
  return JSON.stringify(m);
}

describe('manifest', () => {
  it('round-trips through serializeManifest and parseManifest', () => {
    const m = manifest();
    const text = serializeManifest(m);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text).toContain('\n  "format": "backup-agent/manifest",\n');
    expect(parseManifest(text)).toEqual(m);
    // Stable: serialising the parsed manifest gives the same bytes.
    expect(serializeManifest(parseManifest(text))).toBe(text);
  });

  it('round-trips a manifest without binlog coordinates', () => {
    const m = { ...manifest(), binlog: null };
    expect(parseManifest(serializeManifest(m))).toEqual(m);
    const noGtid = { ...manifest(), binlog: { file: 'binlog.000002', position: 157, gtid: null } };
    expect(parseManifest(serializeManifest(noGtid))).toEqual(noGtid);
  });

  it('rejects objects outside the backup\'s own folder, in either layout', () => {
    const id = '20260101T020304.000Z-a1b2c3';
    for (const key of ['shop/backups/20250101T000000.000Z-000000/dump.sql.zst', `shop/backups/${id}/../x/dump.sql.zst`, `shop/backups/${id}/manifest.json`, `shop/backups/${id}/`, 'shop/binlog/mysql-bin.000001/x.binlog.zst', `other/backups/${id}/dump.sql.zst`]) {
      expect(() => parseManifest(json((m) => ((m['objects'] as { key: string }[])[0] as { key: string }).key = key))).toThrow(
        `manifest is invalid at objects.0.key: ${key} is not in the folder of backup shop/${id}`,
      );
    }
    // Version 1 lives directly under <database>/<id>/.
    const legacy = json((m) => {
      m['version'] = 1;
      ((m['objects'] as { key: string }[])[0] as { key: string }).key = `shop/${id}/dump.sql.zst`;
    });
    expect(parseManifest(legacy).objects[0]?.key).toBe(`shop/${id}/dump.sql.zst`);
    expect(() => parseManifest(json((m) => (m['version'] = 1)))).toThrow(/objects\.0\.key: shop\/backups\/.+ is not in the folder/);
  });

  it('rejects a newer version and says to upgrade', () => {
    const text = json((m) => (m['version'] = MANIFEST_VERSION + 1));
    expect(() => parseManifest(text)).toThrow(/version 4 is newer.*upgrade the agent/);
  });

  it('rejects a newer version even when the rest of the document is unknown to this agent', () => {
    expect(() => parseManifest(JSON.stringify({ format: MANIFEST_FORMAT, version: 7, entirely: 'different' }))).toThrow(/upgrade/);
  });

  it('reads an encrypted (version 3) manifest and the unencrypted version 2 one beside it', () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const encrypted = parseManifest(json((m) => {
      m['version'] = 3;
      m['encryption'] = { format: 'age', recipients: [{ type: 'X25519', recipient }] };
    }));
    expect(encrypted.encryption?.recipients).toEqual([{ type: 'X25519', recipient }]);
    expect(parseManifest(json((m) => (m['version'] = 2))).encryption).toBeNull();
    expect(() => parseManifest(json((m) => (m['encryption'] = { format: 'gpg', recipients: [] })))).toThrow(/invalid at encryption/);
  });

  it('reads a passphrase (scrypt) record, which must be the only recipient', () => {
    const recipient = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
    const scrypt = parseManifest(json((m) => {
      m['version'] = 3;
      m['encryption'] = { format: 'age', recipients: [{ type: 'scrypt' }] };
    }));
    expect(scrypt.encryption).toEqual({ format: 'age', recipients: [{ type: 'scrypt' }] });
    expect(() =>
      parseManifest(json((m) => {
        m['version'] = 3;
        m['encryption'] = { format: 'age', recipients: [{ type: 'scrypt' }, { type: 'X25519', recipient }] };
      })),
    ).toThrow('manifest is invalid at encryption.recipients: a scrypt (passphrase) recipient must be the only one');
  });

  it('rejects text that is not JSON', () => {
    expect(() => parseManifest('{"format": ')).toThrow(/^manifest is not JSON: /);
    expect(() => parseManifest('')).toThrow(/^manifest is not JSON: /);
  });

  it.each([
    ['a missing id', (m: Record<string, unknown>) => delete m['id'], /invalid at id/],
    ['a missing objects list', (m: Record<string, unknown>) => delete m['objects'], /invalid at objects/],
    ['no objects', (m: Record<string, unknown>) => (m['objects'] = []), /invalid at objects/],
    ['a bad sha256', (m: Record<string, unknown>) => ((m['objects'] as Record<string, unknown>[])[0]!['sha256'] = 'xyz'), /invalid at objects\.0\.sha256/],
    ['another format', (m: Record<string, unknown>) => (m['format'] = 'something-else'), /invalid at format/],
    ['an older version', (m: Record<string, unknown>) => (m['version'] = 0), /invalid at version/],
    ['a string version', (m: Record<string, unknown>) => (m['version'] = '1'), /invalid at version/],
    ['a negative size', (m: Record<string, unknown>) => (m['sizeBytes'] = -1), /invalid at sizeBytes/],
    ['a non-ISO date', (m: Record<string, unknown>) => (m['startedAt'] = 'yesterday'), /invalid at startedAt/],
    ['an unknown status', (m: Record<string, unknown>) => (m['status'] = 'running'), /invalid at status/],
  ])('rejects %s, naming the field', (_label, edit, message) => {
    expect(() => parseManifest(json(edit))).toThrow(message);
  });

  it('rejects JSON that is not an object', () => {
    expect(() => parseManifest('null')).toThrow(/manifest is invalid at \(top level\)/);
    expect(() => parseManifest('[1]')).toThrow(/manifest is invalid/);
  });
});
