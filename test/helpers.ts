// Shared helpers for integration tests: run the built CLI as a real process, fresh sandboxes,
// configs that point at the harness's servers.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { inject } from 'vitest';
import { startSandbox, type Sandbox } from '../src/sandbox/mariadb-sandbox.ts';
import { freePort } from './harness/child-process.ts';
import { createS3Bucket } from './harness/s3-server.ts';

export const REPO = fileURLToPath(new URL('..', import.meta.url));
export const AGENT = join(REPO, 'dist', 'main.js');
export const FIXTURES = join(REPO, 'test', 'fixtures');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `agent …` (the built dist/main.js) as a child process, like a user would. */
export async function agent(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [AGENT, ...args], {
    reject: false,
    env: { ...env, AGENT_CONFIG: env['AGENT_CONFIG'] ?? '' },
    extendEnv: true,
    stdin: 'ignore',
    timeout: 120_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/**
 * A fixture tool with variables set: the agent passes its tools only a minimal environment, so a
 * test hands a fixture its settings (RECORD_DIR, …) through a wrapper script written into `dir`.
 */
export async function fixtureWith(dir: string, fixture: string, vars: Record<string, string>): Promise<string> {
  const path = join(dir, `${fixture.split('/').pop() ?? 'tool'}-${randomBytes(3).toString('hex')}.sh`);
  const exports = Object.entries(vars).map(([name, value]) => `export ${name}='${value.replace(/'/g, "'\\''")}'`);
  await writeFile(path, ['#!/bin/sh', ...exports, `exec '${fixture}' "$@"`, ''].join('\n'), { mode: 0o755 });
  return path;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A directory for one test under the run root. */
export async function testDir(name: string): Promise<string> {
  const dir = join(inject('runRoot'), 'tests', uniqueName(name));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A fresh throwaway server (own datadir, port, socket, binlog), for restore targets. */
export async function freshServer(name: string): Promise<Sandbox> {
  const dir = await testDir(name);
  return startSandbox({ dir, port: await freePort(), serverId: 100 + Math.floor(Math.random() * 1000), agentPassword: 'target-pw' });
}

export type StorageKind = 'local' | 's3' | 'gcs';

/** YAML for a storage of `kind` in a fresh bucket/prefix/directory of the harness's servers. */
export async function storageYaml(kind: StorageKind, indent = '  '): Promise<string> {
  const lines: string[] = [];
  if (kind === 'local') {
    lines.push('type: local', `path: ${await testDir('local-store')}`);
  } else if (kind === 's3') {
    const bucket = uniqueName('bkt');
    await createS3Bucket(inject('s3').endpoint, bucket);
    lines.push(
      'type: s3',
      `bucket: ${bucket}`,
      'prefix: backups/prod',
      `endpoint: ${inject('s3').endpoint}`,
      'force_path_style: true',
      'access_key_id: S3RVER',
      'secret_access_key: S3RVER',
      'checksum: when_required',
      'part_size_mb: 5',
      'delimiter_listing: false', // s3rver misses directories that hold only directories
    );
  } else {
    lines.push('type: gcs', `bucket: ${uniqueName('bkt')}`, 'prefix: backups/prod', `endpoint: ${inject('gcs').endpoint}`, 'project_id: test');
  }
  return lines.map((l) => `${indent}${l}`).join('\n');
}

/** The harness's source MariaDB over TCP as the `agent` user. */
export function sourceConnectionYaml(indent = '    '): string {
  const m = inject('mariadb');
  return [`host: 127.0.0.1`, `port: ${m.port}`, 'user: agent', `password: \${SOURCE_DB_PASSWORD}`].map((l) => `${indent}${l}`).join('\n');
}

export function sourceEnv(): Record<string, string> {
  return { SOURCE_DB_PASSWORD: inject('mariadb').password };
}

export async function writeConfig(dir: string, yaml: string): Promise<string> {
  const path = join(dir, 'agent.yaml');
  await writeFile(path, yaml);
  return path;
}

/** Runs SQL on the harness's source server as root over its socket. */
export async function sourceSql(sql: string): Promise<string> {
  const m = inject('mariadb');
  const { stdout } = await execa('mariadb', [`--defaults-file=${join(m.dir, 'my.cnf')}`, '--batch', '--skip-column-names', '-e', sql]);
  return stdout;
}

/** CHECKSUM TABLE … EXTENDED of every base table of `schema`, through `run` (a server's sql()): equal before and after a restore. */
export async function schemaChecksums(run: (sql: string) => Promise<string>, schema: string): Promise<string> {
  const tables = (await run(`SELECT table_name FROM information_schema.tables WHERE table_schema='${schema}' AND table_type='BASE TABLE' ORDER BY 1`)).split('\n').filter(Boolean);
  if (tables.length === 0) throw new Error(`schema ${schema} has no tables to checksum`);
  return run(`CHECKSUM TABLE ${tables.map((t) => `\`${schema}\`.\`${t}\``).join(', ')} EXTENDED`);
}
