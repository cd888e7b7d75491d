// Physical backups keep the entry's TLS settings: a MariaDB started for this test accepts only TLS
// (require_secure_transport=ON, a self-signed certificate for 127.0.0.1). mariadb-backup, which
// reads its own option groups and not [client], must get the TLS options too: with
// `tls.mode: verify_identity` and the CA the full backup succeeds; the same tool run without the
// TLS options is turned away, so the success proves the options reached the tool.
import { execa } from 'execa';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDefaultsFile } from '../../src/capture/defaults-file.ts';
import type { Connection } from '../../src/config/normalize.ts';
import { Secret } from '../../src/config/secret.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort } from '../harness/child-process.ts';
import { agent, storageYaml, testDir, writeConfig } from '../helpers.ts';

let dir: string;
let server: Sandbox;

beforeAll(async () => {
  dir = await testDir('physical-tls');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  server = await startSandbox({
    dir: join(dir, 'server'),
    port: await freePort(),
    serverId: 21,
    agentPassword: 'tls-pw',
    serverOptions: [`ssl-cert=${cert}`, `ssl-key=${key}`, `ssl-ca=${cert}`, 'require_secure_transport=ON'],
  });
  await server.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO shop.t VALUES (1), (2)');
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

async function config(name: string, tls: string): Promise<string> {
  return writeConfig(
    await testDir(`physical-tls-${name}`),
    [
      'storage:',
      await storageYaml('local'),
      'databases:',
      '  - name: tls',
      '    host: 127.0.0.1',
      `    port: ${server.port}`,
      '    user: agent',
      '    password: ${TLS_PW}',
      `    tls: ${tls}`,
      '',
    ].join('\n'),
  );
}

describe('physical backups over TLS', () => {
  it('a full backup goes through with the entry\'s TLS settings; without TLS the server refuses it', async () => {
    const verified = await config('verified', `{ mode: verify_identity, ca_file: ${join(dir, 'cert.pem')} }`);
    const ok = await agent(['--config', verified, 'run-now', '--type', 'full', '--json'], { TLS_PW: 'tls-pw' });
    expect(ok.stderr).toBe('');
    expect(ok.exitCode).toBe(0);
    const [manifest] = JSON.parse(ok.stdout) as { type: string; status: string }[];
    expect(manifest).toMatchObject({ type: 'full', status: 'completed' });

    // The same tool with the same account, but its option group without TLS: the server turns it
    // away, so the success above means the TLS options reached mariadb-backup.
    const connection = { host: '127.0.0.1', port: server.port, user: 'agent', password: new Secret('tls-pw'), tls: { mode: 'disabled' as const } };
    const target = join(dir, 'plain-target');
    const plain = await withDefaultsFile(connection as Connection, 'mariadb', (file) =>
      execa('mariadb-backup', [`--defaults-file=${file}`, '--backup', '--stream=xbstream', `--target-dir=${target}`], { reject: false, stdout: 'ignore' }),
    'mariadb-backup');
    expect(plain.exitCode).not.toBe(0);
    expect(plain.stderr).toMatch(/Failed to connect to MariaDB server: (Access denied|Connections using insecure transport are prohibited)/);
    await rm(target, { recursive: true, force: true });
  });
});
