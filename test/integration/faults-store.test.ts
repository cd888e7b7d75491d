// Fault tests with real processes, for the store: a local store on a real 20 MiB tmpfs that fills
// up mid-backup, and `agent prune` killed with SIGKILL mid-removal on a slow S3 store (s3rver
// behind a fault proxy that delays every request). Each ends with every listed backup verified
// and the newest restored equal, and nothing half-written left.
import { execa } from 'execa';
import { mkdir, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.ts';
import { faultEnv, spawnAgent, startFaultSource, waitFor, type FaultSource } from '../harness/fault-source.ts';
import { createS3Bucket, startS3Server, type S3Server } from '../harness/s3-server.ts';
import { assertStoreConsistent } from '../harness/store-consistency.ts';
import { agent, testDir } from '../helpers.ts';

let source: FaultSource;
const recorded = new Map<string, string>();

beforeAll(async () => {
  source = await startFaultSource('faults-store', { sampleRows: 300, bulkRows: 5_000 });
});

afterAll(async () => {
  await source?.stop();
});

async function config(name: string, storage: string[], extra: string[] = []): Promise<string> {
  const path = join(await testDir(name), 'agent.yaml');
  await writeFile(
    path,
    ['storage:', ...storage.map((l) => `  ${l}`), ...extra, 'databases:', '  - name: source', '    host: 127.0.0.1', `    port: ${source.port}`,
      '    user: agent', '    password: ${SOURCE_PW}', `    schemas: [${source.schema}]`, '    retention: { manual: { keep_last: 2 } }', ''].join('\n'),
  );
  return path;
}

/** A backup that must succeed; records the source's checksums for it, then changes the source. */
async function goodBackup(configPath: string): Promise<string> {
  const result = await agent(['--config', configPath, 'run-now', '--json'], faultEnv);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  const id = (JSON.parse(result.stdout) as { id: string }[])[0]?.id ?? '';
  recorded.set(id, await source.checksums(source.sql));
  await source.sql(`INSERT INTO ${source.schema}.audit (what, at) VALUES ('after ${id}', NOW(6))`);
  return id;
}

const consistent = (configPath: string) => assertStoreConsistent(configPath, { env: faultEnv, recorded, checksums: source.checksums });

describe('a local store that runs out of space mid-backup', () => {
  let mountPoint: string | undefined;

  afterAll(async () => {
    if (mountPoint) await execa('umount', [mountPoint]);
  });

  it('run-now fails with ENOSPC in one line, leaves no manifest and no .partial; after freeing space the next run-now succeeds', async () => {
    const dir = await testDir('faults-full');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    // A real small file system (needs root; fails, never skips, without it).
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', mnt]);
    mountPoint = mnt;
    const store = join(mnt, 'store');
    const path = await config('faults-full', ['type: local', `path: ${store}`]);
    const first = await goodBackup(path);

    // Something else fills the disk, leaving 64 KiB: less than one backup (~600 KiB compressed).
    const fs = await statfs(mnt);
    await writeFile(join(mnt, 'filler'), Buffer.alloc(Number(fs.bavail * fs.bsize) - 64 * 1024));
    const full = await agent(['--config', path, 'run-now'], faultEnv);
    expect(full.exitCode).toBe(1);
    const errors = full.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors).toEqual([`error: source: upload backup of source to ${store}: ENOSPC: no space left on device, write`]);
    expect(full.stderr).toContain('hint: the storage is full: free space there (agent prune removes what retention allows) or give it more');
    const afterFull = await consistent(path);
    expect(afterFull).toEqual({ listed: [first], strays: [] });

    await rm(join(mnt, 'filler'));
    const second = await goodBackup(path);
    expect(await consistent(path)).toEqual({ listed: [second, first], strays: [] });
  }, 240_000);
});

describe('kill -9 of agent prune mid-removal, on a slow S3 store', () => {
  let s3: S3Server;
  let proxy: FaultProxy;
  let dataDir: string;

  beforeAll(async () => {
    const dir = await testDir('faults-prune-s3');
    dataDir = join(dir, 'data');
    s3 = await startS3Server({ dir: dataDir, runDir: join(dir, 'run') });
    proxy = await startFaultProxy({ upstreamPort: s3.port, upLatencyMs: 150 });
  });

  afterAll(async () => {
    await proxy?.close();
    await s3?.stop();
  });

  it('leaves every listed backup restorable (manifest first); the next prune takes over the dead local holder\'s lock and finishes', async () => {
    await createS3Bucket(s3.endpoint, 'prune');
    const storage = (endpoint: string) => ['type: s3', 'bucket: prune', 'prefix: backups', `endpoint: ${endpoint}`, 'force_path_style: true',
      'access_key_id: S3RVER', 'secret_access_key: S3RVER', 'checksum: when_required'];
    const extra = ['prune: { orphan_grace: 1s, lock_ttl: 10s }'];
    const direct = await config('faults-prune', storage(s3.endpoint), extra);
    const slow = await config('faults-prune-slow', storage(`http://127.0.0.1:${proxy.port}`), extra);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift(await goodBackup(direct));
    const [keep1, keep2, ...doomed] = ids;

    // The moment: the first object of a doomed backup is gone, whichever it is (manifest-first
    // deletion makes it a manifest; data-first would leave a listed backup without its data).
    const objectFile = (id: string, name: string) => join(dataDir, 'prune', 'backups', 'source', 'backups', id, `${name}._S3rver_object`);
    const manifestFile = (id: string) => objectFile(id, 'manifest.json');
    const exists = (file: string) => readFile(file).then(() => true, () => false);
    const doomedFiles = doomed.flatMap((id) => [manifestFile(id), objectFile(id, 'dump.sql.zst')]);
    expect((await Promise.all(doomedFiles.map(exists))).every(Boolean)).toBe(true);
    const run = spawnAgent(['--config', slow, 'prune']);
    await waitFor(async () => !(await Promise.all(doomedFiles.map(exists))).every(Boolean), 'the first object removed by prune');
    process.kill(run.pid, 'SIGKILL');
    expect((await run.result).signal).toBe('SIGKILL');
    const gone: string[] = [];
    for (const id of doomed) if (!(await exists(manifestFile(id)))) gone.push(id);
    expect(gone).toHaveLength(1);
    const afterKill = await consistent(direct);
    expect(afterKill.listed).toEqual(ids.filter((id) => id !== gone[0]));
    // Data without its manifest (removed next, had prune lived) and the dead process's lock.
    expect(afterKill.strays).toEqual([`source/backups/${gone[0]}/dump.sql.zst`, 'source/prune.lock']);

    // The lock's holder was killed on this machine (same host, boot and pid namespace; its pid is
    // gone): the next prune takes the lock over at once, without waiting for lock_ttl, and
    // finishes the job.
    const finished = await agent(['--config', direct, 'prune', '--json'], faultEnv);
    expect(finished.exitCode).toBe(0);
    const [report] = JSON.parse(finished.stdout) as { removed: string[]; orphansRemoved: string[] }[];
    expect(report?.removed).toEqual(doomed.filter((id) => id !== gone[0]));
    expect(report?.orphansRemoved).toEqual([`source/backups/${gone[0]}/dump.sql.zst`]);
    expect(await consistent(direct)).toEqual({ listed: [keep1, keep2], strays: [] });
    expect(await readdir(join(dataDir, 'prune', 'backups', 'source', 'backups'))).toEqual([keep2, keep1].sort());
  }, 240_000);
});
