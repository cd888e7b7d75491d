// Fault tests with real processes, for `agent run-now`: the agent killed with SIGKILL mid-upload
// (local directory and s3rver), s3rver killed mid-upload and started again, MariaDB killed
// mid-dump. The moment comes from what the store shows (a .partial file of 1 MiB, a stored
// multipart part), never from a sleep. The dump reads its server through a fault proxy paced at
// 2 MiB/s so that moment lasts; good backups connect directly. Each case ends with every listed
// backup verified and the newest restored equal, and nothing half-written left.
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.ts';
import { faultEnv, spawnAgent, startFaultSource, waitFor, type FaultSource } from '../harness/fault-source.ts';
import { createS3Bucket, startS3Server, type S3Server } from '../harness/s3-server.ts';
import { assertStoreConsistent } from '../harness/store-consistency.ts';
import { agent, testDir } from '../helpers.ts';

let source: FaultSource;
let proxy: FaultProxy;
let s3: S3Server;
let s3Dir: string;
const recorded = new Map<string, string>();
/** What the killed run-now left in its private TMPDIR (the dump tool's credentials file lives there while it runs). */
const tmpLeftAfterKill = new Map<string, string[]>();

beforeAll(async () => {
  // ~8 MB of SQL: four seconds through the paced proxy, well under one directly.
  source = await startFaultSource('faults-backup', { sampleRows: 300, bulkRows: 40_000 });
  proxy = await startFaultProxy({ upstreamPort: source.port, downRate: 2 * 1024 * 1024 });
  const dir = await testDir('faults-s3');
  s3Dir = join(dir, 'data');
  s3 = await startS3Server({ dir: s3Dir, runDir: join(dir, 'run') });
});

afterAll(async () => {
  await proxy?.close();
  await s3?.stop();
  await source?.stop();
});

interface Configs {
  /** The source directly: for backups that must succeed. */
  fast: string;
  /** The source through the paced proxy: for the run that gets killed. */
  slow: string;
}

/** `storage`: the YAML lines of the storage block; S3 stores get uncompressed dumps, so one fills two 5 MiB parts. */
async function configs(name: string, storage: string[]): Promise<Configs> {
  const dir = await testDir(name);
  const yaml = (port: number) =>
    [
      'storage:',
      ...storage.map((l) => `  ${l}`),
      'prune: { orphan_grace: 1s }',
      ...(storage.includes('type: s3') ? ['compression: { algorithm: none }'] : []),
      'databases:',
      '  - name: source',
      '    host: 127.0.0.1',
      `    port: ${port}`,
      '    user: agent',
      '    password: ${SOURCE_PW}',
      `    schemas: [${source.schema}]`,
      '    retention: { manual: { keep_last: 10 } }',
      '',
    ].join('\n');
  const fast = join(dir, 'fast.yaml');
  const slow = join(dir, 'slow.yaml');
  await writeFile(fast, yaml(source.port));
  await writeFile(slow, yaml(proxy.port));
  return { fast, slow };
}

async function s3Storage(server: S3Server, bucket: string): Promise<string[]> {
  await createS3Bucket(server.endpoint, bucket);
  return ['type: s3', `bucket: ${bucket}`, 'prefix: backups', `endpoint: ${server.endpoint}`, 'force_path_style: true',
    'access_key_id: S3RVER', 'secret_access_key: S3RVER', 'checksum: when_required', 'part_size_mb: 5'];
}

/** A backup that must succeed; records the source's checksums for it, then changes the source so the next one differs. */
async function goodBackup(config: string): Promise<string> {
  const result = await agent(['--config', config, 'run-now', '--json'], faultEnv);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const id = (JSON.parse(result.stdout) as { id: string }[])[0]?.id ?? '';
  recorded.set(id, await source.checksums(source.sql));
  await source.sql(`INSERT INTO ${source.schema}.audit (what, at) VALUES ('after ${id}', NOW(6))`);
  return id;
}

const consistent = (config: string) => assertStoreConsistent(config, { env: faultEnv, recorded, checksums: source.checksums });

/** Local: in-flight files of at least `bytes`, as paths relative to the store. */
async function partials(root: string, bytes = 0): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true }).catch(() => [] as string[])) {
    if (entry.endsWith('.partial') && ((await stat(join(root, entry)).catch(() => undefined))?.size ?? -1) >= bytes) found.push(entry);
  }
  return found;
}

/** s3rver's on-disk multipart uploads of a bucket: upload ID → stored part numbers (a part is whole once its .md5 exists). */
async function multipartUploads(dataDir: string, bucket: string): Promise<Map<string, string[]>> {
  const root = join(dataDir, bucket, '._S3rver_uploads');
  const uploads = new Map<string, string[]>();
  for (const id of await readdir(root).catch(() => [] as string[])) {
    uploads.set(id, (await readdir(join(root, id))).filter((f) => f.endsWith('.md5')).map((f) => f.replace('.md5', '')));
  }
  return uploads;
}

describe.each(['local', 's3'] as const)('kill -9 of agent run-now mid-upload, %s storage', (kind) => {
  it('leaves no half backup; every listed backup restores; the next run-now succeeds; prune removes what it can', async () => {
    const storeDir = await testDir('faults-kill-store');
    const bucket = `kill-${kind}`;
    const storage = kind === 'local' ? ['type: local', `path: ${storeDir}`] : await s3Storage(s3, bucket);
    const { fast, slow } = await configs(`faults-kill-${kind}`, storage);
    const first = await goodBackup(fast);

    const tmp = await testDir('faults-kill-tmp');
    const run = spawnAgent(['--config', slow, 'run-now'], { ...faultEnv, TMPDIR: tmp });
    if (kind === 'local') {
      await waitFor(async () => (await partials(storeDir, 1024 * 1024)).length > 0, 'a .partial of 1 MiB in the store');
    } else {
      await waitFor(async () => [...(await multipartUploads(s3Dir, bucket)).values()].some((parts) => parts.length > 0), 'a stored multipart part');
    }
    process.kill(run.pid, 'SIGKILL');
    const killed = await run.result;
    expect(killed.signal).toBe('SIGKILL');
    const killedAt = Date.now();
    tmpLeftAfterKill.set(kind, await readdir(tmp, { recursive: true }));

    const afterKill = await consistent(fast);
    expect(afterKill.listed).toEqual([first]);
    if (kind === 'local') {
      // The in-flight file stays (nobody is left to remove it), never under the object's key.
      expect(afterKill.strays).toEqual([expect.stringMatching(/^source\/backups\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\/dump\.sql\.zst\.[0-9a-f]{12}\.partial$/)]);
    } else {
      // An unfinished multipart upload is no object: nothing is visible, the parts wait in the store.
      expect(afterKill.strays).toEqual([]);
      expect([...(await multipartUploads(s3Dir, bucket)).keys()]).toHaveLength(1);
    }
    const leftover = afterKill.strays;
    // The killed run's lease stays behind: its holder is gone, so it protects nothing.
    expect(afterKill.leases).toEqual([expect.stringMatching(/^source\/leases\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\.json$/)]);

    const second = await goodBackup(fast);
    await waitFor(async () => Date.now() > killedAt + 1500, 'orphan_grace (1s) to pass since the kill');
    const pruned = await agent(['--config', fast, 'prune', '--json'], faultEnv);
    expect(pruned.exitCode).toBe(0);
    const [report] = JSON.parse(pruned.stdout) as { removed: string[]; orphansRemoved: string[]; uploadsAborted: string[] }[];
    expect(report?.removed).toEqual([]);
    expect(report?.orphansRemoved).toEqual([]);
    if (kind === 'local') {
      // The temp file, then the backup's directory it leaves empty.
      expect(report?.uploadsAborted).toEqual([...leftover, `${leftover[0]?.split('/').slice(0, 3).join('/')}/`]);
    } else {
      // s3rver answers ListMultipartUploads with 405: prune says so and goes on; the parts stay.
      expect(report?.uploadsAborted).toEqual([]);
      expect(pruned.stderr).toContain('could not clean up unfinished uploads');
      expect([...(await multipartUploads(s3Dir, bucket)).keys()]).toHaveLength(1);
    }
    const final = await consistent(fast);
    expect(final.listed).toEqual([second, first]);
    expect(final.strays).toEqual([]);
    expect(final.leases).toBeUndefined(); // prune removed the dead run's lease
  }, 240_000);

  // The 0600 defaults file holding the database password loses its name before the dump tool
  // starts (the tool reads it through the agent's descriptor): SIGKILL leaves nothing in TMPDIR.
  it('leaves no credentials file behind in TMPDIR', () => {
    const left = tmpLeftAfterKill.get(kind);
    if (left === undefined) throw new Error('the case above never got to the kill');
    // Node's compile cache (no secret in it) is the only thing the agent keeps in TMPDIR.
    expect(left.filter((entry) => !entry.startsWith('node-compile-cache'))).toEqual([]);
  });
});

describe('the S3 endpoint killed mid-upload and started again', () => {
  it('run-now fails with one line naming the connection failure and stores nothing; after the restart the next run-now succeeds', async () => {
    const dir = await testDir('faults-s3-dies');
    const dataDir = join(dir, 'data');
    let server = await startS3Server({ dir: dataDir, runDir: join(dir, 'run') });
    try {
      const { fast, slow } = await configs('faults-s3-dies', await s3Storage(server, 'dies'));
      const run = spawnAgent(['--config', slow, 'run-now']);
      await waitFor(async () => [...(await multipartUploads(dataDir, 'dies')).values()].some((parts) => parts.length > 0), 'a stored multipart part');
      process.kill(server.pid, 'SIGKILL');
      const failed = await run.result;
      expect(failed.exitCode).toBe(1);
      const errors = failed.stderr.split('\n').filter((l) => l.startsWith('error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^error: source: upload backup of source to s3:\/\/dies\/backups: .*(ECONNREFUSED|ECONNRESET|EPIPE|socket hang up)/);
      expect(failed.stderr).toContain('hint: the storage endpoint cannot be reached');

      await server.stop();
      server = await startS3Server({ dir: dataDir, runDir: join(dir, 'run'), port: server.port });
      // The failed run could not release its lease on the dead store: left behind, protecting nothing.
      const none = await consistent(fast);
      expect(none).toMatchObject({ listed: [], strays: [] });
      const id = await goodBackup(fast);
      const final = await consistent(fast);
      expect(final).toMatchObject({ listed: [id], strays: [] });
    } finally {
      await server.stop();
    }
  }, 240_000);
});

describe('the S3 connection reset mid-part (the endpoint gone for a moment)', () => {
  it('the part is sent again on a new connection: the backup completes, unchanged, and restores equal', async () => {
    const wire = await startFaultProxy({ upstreamPort: s3.port });
    try {
      const storage = (await s3Storage(s3, 'reset')).map((l) => (l.startsWith('endpoint:') ? `endpoint: http://127.0.0.1:${wire.port}` : l));
      const { fast } = await configs('faults-s3-reset', storage);
      // Hold the upload once the store has received 1 MiB (inside the first 5 MiB part), then reset.
      const held = wire.stallAfter(1024 * 1024);
      const run = spawnAgent(['--config', fast, 'run-now', '--json']);
      await held;
      wire.cutConnections();
      const result = await run.result;
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      const id = (JSON.parse(result.stdout) as { id: string }[])[0]?.id ?? '';
      recorded.set(id, await source.checksums(source.sql));
      expect(await consistent(fast)).toEqual({ listed: [id], strays: [] });
    } finally {
      await wire.close();
    }
  }, 240_000);
});

describe('MariaDB killed mid-dump', () => {
  it('run-now fails naming the dump tool, leaves nothing in the store; after the restart run-now succeeds', async () => {
    const storeDir = await testDir('faults-db-dies-store');
    const { fast, slow } = await configs('faults-db-dies', ['type: local', `path: ${storeDir}`]);
    const before = proxy.downBytes;
    const run = spawnAgent(['--config', slow, 'run-now']);
    // Mid-dump by what the server has sent (a quarter of the ~8 MB): the store is no clock here,
    // as the zstd command compresses in jobs of a few MiB and writes its first output late.
    await waitFor(async () => proxy.downBytes - before > 2 * 1024 * 1024, '2 MiB of the dump through the proxy');
    await source.kill();
    const failed = await run.result;
    expect(failed.exitCode).toBe(1);
    const errors = failed.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: source: dump database source: mariadb-dump exited with code \d+/);
    expect(failed.stderr).toMatch(/Lost connection to server during query when dumping table `bulk` at row: \d+/);
    expect(failed.stderr).toContain('hint: the output of the dump tool above says what went wrong');
    expect(await partials(storeDir)).toEqual([]);

    await source.restart();
    expect(await consistent(fast)).toEqual({ listed: [], strays: [] });
    const id = await goodBackup(fast);
    expect(await consistent(fast)).toEqual({ listed: [id], strays: [] });
  }, 240_000);
});
