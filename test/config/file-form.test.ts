import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fileForm, formatDuration } from '../../src/config/file-form.ts';
import { interpolate } from '../../src/config/interpolate.ts';
import { parseConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';

const env = { DB_PASSWORD: 'pw-from-env-123', DB_PORT: '3307' };

/** What `agent config validate` prints for `text`. */
function validated(text: string): string {
  const written: unknown = parse(text);
  return stringify(fileForm(written, configSchema.parse(interpolate(written, env).value)));
}

describe('config validate: the file form', () => {
  it('fills in defaults and loads again to the same configuration', () => {
    const text = 'storage:\n  type: local\n  path: /srv/backups\ndatabases:\n  - name: shop\n    password: ${DB_PASSWORD}\n    port: ${DB_PORT}\n';
    const out = validated(text);
    expect(out).toContain('password: ${DB_PASSWORD}');
    expect(out).toContain('port: ${DB_PORT}');
    expect(out).toContain('orphan_grace: 1d');
    expect(out).toContain('shutdown_grace: 5m');
    expect(out).toContain('segment_age: 3s');
    expect(out).toContain('listen_port: 9187');
    expect(JSON.stringify(parseConfig(out, 'out', env))).toBe(JSON.stringify(parseConfig(text, 'in', env)));
    expect(validated(out)).toBe(out);
  });

  it('redacts secrets written literally, keeps a URL a URL', () => {
    const text = [
      'storage:',
      '  type: s3',
      '  bucket: b',
      '  access_key_id: AKIALITERAL',
      '  secret_access_key: literal-secret-key',
      'databases:',
      '  - name: shop',
      '    password: "p$${notaref}"',
      'notifications:',
      '  webhooks:',
      '    - url: https://hooks.example.com/T0/secret-token',
      '',
    ].join('\n');
    const out = validated(text);
    for (const secret of ['AKIALITERAL', 'literal-secret-key', 'notaref', 'secret-token']) expect(out).not.toContain(secret);
    expect(out).toContain('url: https://hooks.example.com/**redacted**');
    expect(() => parseConfig(out, 'out', env)).not.toThrow();
  });

  it('keeps the path of a *_file secret, not its content', () => {
    const text = 'storage:\n  type: local\n  path: /srv\ndatabases:\n  - name: shop\n    password_file: /etc/hostname\n';
    expect(validated(text)).toContain('password_file: /etc/hostname');
  });

  it('formats durations in the largest units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(86_400_000 + 1500)).toBe('1d1s500ms');
  });
});
