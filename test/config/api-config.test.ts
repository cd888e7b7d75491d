import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allows, TokenTable } from '../../src/api/auth.ts';
import { describeValidation } from '../../src/api/server.ts';
import { parseConfig } from '../../src/config/load.ts';

async function tokenFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'api-token-'));
  const path = join(dir, 'token');
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

const config = (api: string[], listenHost = '127.0.0.1') =>
  ['storage:', '  type: local', '  path: /tmp/x', 'daemon:', `  listen_host: ${listenHost}`, 'api:', ...api, 'databases:', '  - name: a', '    host: 127.0.0.1', ''].join('\n');

function configError(yaml: string): string {
  try {
    parseConfig(yaml, 'agent.yaml', {});
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('the api: block', () => {
  it('reads tokens from files, with names and roles', async () => {
    const file = await tokenFile(`${'t'.repeat(40)}\n`);
    const parsed = parseConfig(config(['  tokens:', `    - { name: ci, role: operator, token_file: ${file} }`]), 'agent.yaml', {});
    expect(parsed.api?.tokens[0]).toMatchObject({ name: 'ci', role: 'operator' });
    expect(parsed.api?.tokens[0]?.token_file.reveal()).toBe('t'.repeat(40));
    expect(parsed.api).toMatchObject({ allow_insecure_http: false, body_limit_kb: 64, rate_limit: { max: 300, window: 60_000 } });
  });

  it('refuses a short token, a duplicate name or token, an unknown role, never showing the token', async () => {
    const short = await tokenFile('short-token');
    expect(configError(config(['  tokens:', `    - { name: ci, role: operator, token_file: ${short} }`]))).toContain('api.tokens[0].token_file: the token must be at least 32 characters');
    const one = await tokenFile('x'.repeat(40));
    const message = configError(config(['  tokens:', `    - { name: ci, role: admin, token_file: ${one} }`, `    - { name: ci, role: viewer, token_file: ${one} }`]));
    expect(message).toContain('api.tokens[1].name: duplicate token name "ci" (also api.tokens[0])');
    expect(message).toContain('api.tokens[1].token_file: the same token as api.tokens[0]');
    expect(message).not.toContain('x'.repeat(40));
    expect(configError(config(['  tokens:', `    - { name: ci, role: root, token_file: ${one} }`]))).toContain('api.tokens[0].role');
    expect(configError(config(['  tokens: []']))).toContain('api.tokens: name at least one token');
  });

  it('refuses plain HTTP on an address other than loopback unless the config says so', async () => {
    const file = await tokenFile('y'.repeat(40));
    const tokens = ['  tokens:', `    - { name: ci, role: viewer, token_file: ${file} }`];
    expect(configError(config(tokens, '0.0.0.0'))).toContain('api.tls: the API would be served over plain HTTP on 0.0.0.0');
    expect(parseConfig(config([...tokens, '  allow_insecure_http: true'], '0.0.0.0'), 'agent.yaml', {}).api?.allow_insecure_http).toBe(true);
    expect(parseConfig(config([...tokens, '  tls: { cert_file: /c.pem, key_file: /k.pem }'], '0.0.0.0'), 'agent.yaml', {}).api?.tls).toEqual({ cert_file: '/c.pem', key_file: '/k.pem' });
    expect(parseConfig(config(tokens, '::1'), 'agent.yaml', {}).api).toBeDefined();
  });
});

describe('tokens and roles', () => {
  it('finds the caller of a bearer token, and tells a missing one from a wrong one', async () => {
    const table = new TokenTable([
      { name: 'reader', role: 'viewer', token_file: { reveal: () => 'r'.repeat(40) } as never },
      { name: 'boss', role: 'admin', token_file: { reveal: () => 'b'.repeat(40) } as never },
    ]);
    expect(table.identify(`Bearer ${'b'.repeat(40)}`)).toEqual({ name: 'boss', role: 'admin' });
    expect(table.identify(`bearer   ${'r'.repeat(40)} `)).toEqual({ name: 'reader', role: 'viewer' });
    expect(table.identify(undefined)).toBe('missing');
    expect(table.identify('')).toBe('missing');
    expect(table.identify(`Basic ${'b'.repeat(40)}`)).toBe('invalid');
    expect(table.identify(`Bearer ${'b'.repeat(39)}`)).toBe('invalid');
    expect(table.identify(`Bearer ${'b'.repeat(40)} extra`)).toBe('invalid');
  });

  it('orders the roles: admin ⊃ operator ⊃ viewer', () => {
    expect(allows('admin', 'operator')).toBe(true);
    expect(allows('operator', 'viewer')).toBe(true);
    expect(allows('viewer', 'operator')).toBe(false);
    expect(allows('operator', 'admin')).toBe(false);
  });

  it('names the field a validation error is about', () => {
    expect(describeValidation('body', [{ instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: 'colour' } }])).toBe('body.colour: unknown field');
    expect(describeValidation('body', [{ instancePath: '/schedule', keyword: 'pattern', message: 'must match pattern', params: {} }])).toBe('body.schedule: must match pattern');
    expect(describeValidation('querystring', [{ instancePath: '', keyword: 'required', params: { missingProperty: 'page' } }])).toBe('querystring.page: missing');
  });
});
