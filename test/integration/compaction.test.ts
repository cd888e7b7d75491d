// Binlog compaction against real parts: a throwaway MariaDB under a write load, `agent binlog
// capture` archiving it (with a rotation), then compaction in its own process, killed with
// SIGKILL at each of its steps (the compaction's BACKUP_AGENT_TEST_PAUSE_AT test hook), on local
// storage and on s3rver. After every kill the readers see one gapless run; point-in-time restores
// to the same target over the uncompacted, the half-compacted and the compacted archive give the
// same CHECKSUM TABLE; the merged objects hold the captured bytes byte for byte.
import { Buffer } from 'node:buffer';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archive } from '../../src/binlog/archive.ts';
import { chooseCover } from '../../src/binlog/cover.ts';
import { listSegmentObjects } from '../../src/binlog/segments.ts';
import { loadConfig } from '../../src/config/load.ts';
import { segmentBytes } from '../../src/restore/pitr.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { openStorage } from '../../src/storage/open.ts';
import { freePort } from '../harness/child-process.ts';
import { AGENT, agent, FIXTURES, freshServer, storageYaml, testDir, writeConfig } from '../helpers.ts';

const SCHEMA = 'shop';
const PASSWORD = 'compact-pw';
const ENV = { SOURCE_PW: PASSWORD };
const THREE_DAYS = String(3 * 24 * 3600_000);
// In this order each kill leaves what the next step's run starts with (e.g. a committed merge whose sources all remain, for cleanup-manifest).
const STEPS = ['merge-data', 'merge-manifest', 'cleanup-manifest', 'source-manifest', 'source-data'] as const;
const tables = ['customers', 'orders', 'audit', 'load_test'];
const checksums = (sql: (s: string) => Promise<string>) => sql(`CHECKSUM TABLE ${tables.map((t) => `${SCHEMA}.${t}`).join(', ')} EXTENDED`);

let dir: string;
let source: Sandbox;
let localRoot: string;
let T: Date;
let expected: string;

function entryYaml(storage: string): string {
  return [
    'storage:',
    storage,
    'databases:',
    '  - name: source',
    '    host: 127.0.0.1',
    `    port: ${source.port}`,
    '    user: agent',
    '    password: ${SOURCE_PW}',
    `    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ${join(dir, 'spool')} }`,
    '',
  ].join('\n');
}

async function writes(ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (let i = 0; Date.now() < until; i++) {
    await source.sql(`INSERT INTO ${SCHEMA}.load_test (v) VALUES (REPEAT(MD5(RAND()), 8)); UPDATE ${SCHEMA}.customers SET note = 'w${i}' WHERE id = ${1 + (i % 50)}`);
    await sleep(20);
  }
}

async function nextSecond(slackMs = 50): Promise<Date> {
  const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await sleep(next - Date.now() + slackMs);
  return new Date(next);
}

async function archiveSummary(config: string): Promise<{ segments: number; runs: unknown[]; gaps: unknown[]; lastRecoverableAt: string | null }> {
  const result = await agent(['--config', config, 'binlog', 'list', '--json'], ENV);
  expect(result.exitCode, result.stderr).toBe(0);
  return (JSON.parse(result.stdout) as never[])[0] as never;
}

async function restoreChecksum(config: string): Promise<string> {
  const server = await freshServer('compact-target');
  try {
    const targetConfig = await writeConfig(
      await testDir('compact-target'),
      (await readFile(config, 'utf8')) + ['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw', ''].join('\n'),
    );
    const result = await agent(['--config', targetConfig, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString()], ENV);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/then replayed \d+ transactions of binlog up to /);
    return await checksums(server.sql);
  } finally {
    await server.stop();
  }
}

/** Runs the compaction fixture; with a pause step, waits for it there and kills it with SIGKILL. */
async function compact(config: string, pauseAt?: string): Promise<{ paused: boolean; stdout: string }> {
  const child = execa(process.execPath, [join(FIXTURES, 'compactor.ts'), config, 'source', THREE_DAYS], {
    env: { ...ENV, ...(pauseAt ? { BACKUP_AGENT_TEST_PAUSE_AT: pauseAt } : {}) },
    reject: false,
    buffer: { stdout: true, stderr: false },
    stderr: 'pipe',
  });
  if (!pauseAt) {
    const result = await child;
    expect(result.exitCode, String(result.stderr)).toBe(0);
    return { paused: false, stdout: String(result.stdout) };
  }
  let stderr = '';
  const paused = await new Promise<boolean>((resolve) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(`test-pause ${pauseAt}`)) resolve(true);
    });
    void child.then(() => resolve(false));
  });
  if (paused) child.kill('SIGKILL');
  const result = await child;
  if (!paused) expect(result.exitCode, stderr).toBe(0);
  return { paused, stdout: String(result.stdout) };
}

/** Every binlog file's bytes as the readers see them (the cover, each object verified). */
async function fileBytes(storage: StorageDriver): Promise<Map<string, Buffer>> {
  const archive = await Archive.load(storage, 'source');
  const files = new Map<string, Buffer>();
  for (const file of new Set(archive.refs.map((r) => r.file))) {
    const parts: Buffer[] = [];
    for await (const chunk of segmentBytes(storage, archive, archive.refs.filter((r) => r.file === file), new AbortController().signal, { agePath: undefined, identityFile: undefined })) parts.push(chunk);
    files.set(file, Buffer.concat(parts));
  }
  return files;
}

beforeAll(async () => {
  dir = await testDir('compaction');
  source = await startSandbox({ dir: join(dir, 'source'), port: await freePort(), serverId: 31, agentPassword: PASSWORD });
  await source.sql(sampleDataSql(SCHEMA, 300));
  await source.sql(`CREATE TABLE ${SCHEMA}.load_test (id BIGINT PRIMARY KEY AUTO_INCREMENT, v TEXT NOT NULL) ENGINE=InnoDB`);
  const storage = await storageYaml('local');
  localRoot = (/path: (.*)$/m.exec(storage) as RegExpExecArray)[1] as string;
  const config = await writeConfig(await testDir('compaction-capture'), entryYaml(storage));
  const dump = await agent(['--config', config, 'run-now'], ENV);
  expect(dump.exitCode, dump.stderr).toBe(0);
  const capture = execa(process.execPath, [AGENT, '--config', config, 'binlog', 'capture'], { env: ENV, reject: false, stdin: 'ignore', all: true });
  try {
    await writes(2500);
    await source.sql('FLUSH BINARY LOGS');
    await writes(2500);
    expected = await checksums((s) => source.sql(s));
    T = await nextSecond();
    await nextSecond(100);
    await source.sql('FLUSH BINARY LOGS');
    await writes(2000);
    const last = new Date();
    for (let i = 0; ; i++) {
      const summary = await archiveSummary(config);
      if (summary.lastRecoverableAt && Date.parse(summary.lastRecoverableAt) >= Math.floor(last.getTime() / 1000) * 1000) break;
      if (i > 60) throw new Error(`the capture did not catch up: ${JSON.stringify(summary)}`);
      await sleep(500);
    }
  } finally {
    capture.kill('SIGTERM');
    const result = await capture;
    if (result.exitCode !== 0) throw new Error(`binlog capture failed:\n${String(result.all)}`);
  }
}, 120_000);

afterAll(async () => {
  await source?.stop();
});

describe('binlog compaction: byte-identical, crash safe at every step', () => {
  let captured: Map<string, Buffer>;

  it('restores the uncompacted archive to the target', async () => {
    const config = await writeConfig(await testDir('compaction-plain'), entryYaml(`  type: local\n  path: ${localRoot}`));
    const summary = await archiveSummary(config);
    expect(summary.gaps).toEqual([]);
    captured = await fileBytes(await openStorage(loadConfig(config, ENV).databases[0]!.storage));
    expect(captured.size).toBeGreaterThanOrEqual(3);
    // More segments than files: some file has several to merge. (How many more depends on how
    // fast a loaded machine writes; the kill at merge-data needs only one merge.)
    expect(summary.segments).toBeGreaterThan(captured.size);
    expect(await restoreChecksum(config)).toBe(expected);
    // By hand, as the archive's one writer: nothing is due yet (the windows have not closed).
    const run = await agent(['--config', config, 'binlog', 'compact'], ENV);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^source: 0 objects merged, 0 removed; next window closes 20\d\d-/);
  }, 60_000);

  for (const kind of ['local', 's3'] as const) {
    it(`on ${kind}: killed between each step, the archive stays whole; the next run finishes the job`, async () => {
      const storageText = kind === 'local' ? `  type: local\n  path: ${await testDir('compaction-local')}` : await storageYaml('s3');
      const config = await writeConfig(await testDir(`compaction-${kind}`), entryYaml(storageText));
      const storage = await openStorage(loadConfig(config, ENV).databases[0]!.storage);
      if (kind === 'local') {
        await cp(localRoot, (/path: (.*)$/m.exec(storageText) as RegExpExecArray)[1] as string, { recursive: true });
      } else {
        const from = await openStorage({ type: 'local', path: localRoot } as never);
        for await (const o of from.list('source/')) await storage.put(o.key, await from.get(o.key));
      }
      for (const step of STEPS) {
        const { paused } = await compact(config, step);
        expect(paused, `compaction reached step ${step}`).toBe(true);
        const summary = await archiveSummary(config);
        expect(summary.gaps, `after a kill at ${step}`).toEqual([]);
        expect(summary.runs, `after a kill at ${step}`).toHaveLength(1);
        // What the kill left is there, and the readers stepped around it.
        const left = await listSegmentObjects(storage, 'source');
        const manifests = new Set(left.segments.map((x) => x.key.replace(/\.json$/, '')));
        const uncommitted = left.others.filter((o) => /\.L\d-\d{8}T\d{6}Z\.binlog/.test(o.key) && !manifests.has(o.key.replace(/\.binlog(\.[a-z]+)?$/, '')));
        if (step === 'merge-data') expect(uncommitted).toHaveLength(1);
        if (step === 'merge-manifest') expect(chooseCover(left.segments).superseded.length).toBeGreaterThan(0);
      }
      expect(await restoreChecksum(config)).toBe(expected);

      await compact(config);
      const after = await listSegmentObjects(storage, 'source');
      const cover = chooseCover(after.segments);
      expect(cover.superseded).toEqual([]);
      expect(cover.shadowed).toEqual([]);
      // One top-level object per file, and nothing else but its data.
      expect(after.segments.map((s) => s.level)).toEqual(after.segments.map(() => 3));
      expect(after.segments).toHaveLength(captured.size);
      expect(after.others.filter((o) => o.key.includes('.binlog'))).toHaveLength(captured.size);
      expect(await fileBytes(storage)).toEqual(captured);
      expect(await restoreChecksum(config)).toBe(expected);
      await storage.close?.();
    }, 240_000);
  }
});
