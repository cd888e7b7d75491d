// The API over TLS: the daemon serves HTTPS with the configured certificate and key, plain HTTP
// gets nothing, and `agent run-now` reaches it through the certificate of the configuration.
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { agent, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName } from '../helpers.ts';

const TOKEN = 'k'.repeat(48);

describe('the API over TLS', () => {
  const schema = uniqueName('apitls').replace('-', '_');
  let dir: string;
  let port: number;
  let config: string;
  let daemon: DaemonProcess | undefined;
  let ca: Buffer;

  const get = (path: string, token?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  beforeAll(async () => {
    await sourceSql(sampleDataSql(schema, 50));
    dir = await testDir('api-tls');
    port = await freePort();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    ca = await readFile(cert);
    await writeFile(join(dir, 'token'), TOKEN, { mode: 0o600 });
    config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      [
        'storage:',
        '  type: local',
        `  path: ${join(dir, 'store')}`,
        'daemon:',
        `  listen_port: ${port}`,
        '  catch_up: false',
        'api:',
        `  tls: { cert_file: ${cert}, key_file: ${key} }`,
        '  tokens:',
        `    - { name: ops, role: admin, token_file: ${join(dir, 'token')} }`,
        'databases:',
        '  - name: source',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '',
      ].join('\n'),
    );
    daemon = await startDaemon(config, { env: sourceEnv() });
  });

  afterAll(async () => {
    await daemon?.stop();
  });

  it('serves HTTPS with the configured certificate; plain HTTP gets no answer', async () => {
    expect((await get('/v1/jobs', TOKEN)).status).toBe(200);
    expect((await get('/v1/jobs')).status).toBe(401);
    const plain = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.status,
      (err: Error) => err.name,
    );
    expect(plain).not.toBe(200);
  });

  it('`agent run-now` runs the backup in the daemon over HTTPS', async () => {
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`backing up source in the running daemon (https://127.0.0.1:${port}, job `);
    expect(JSON.parse((await get('/v1/jobs', TOKEN)).body).jobs[0]).toMatchObject({ status: 'succeeded', requested_by: 'ops' });
  });

  it('`agent status` finds the daemon over HTTPS', async () => {
    const result = await agent(['--config', config, 'status', '--json'], sourceEnv());
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).daemon).toMatchObject({ running: true });
  });
});
