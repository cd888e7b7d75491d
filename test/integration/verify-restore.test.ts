// `agent verify --depth restore` (issue 15), the engine function called directly: backups of the
// harness MariaDB on s3rver restored into the agent's own throwaway server, every table checked,
// and compared with the figures recorded at backup time. A dump edited to lose one row, its
// manifest's size and SHA-256 rewritten to match (so the objects and archive depths pass), is
// caught here, naming the table and the counts. The server and its directory are gone afterwards.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestKeyOf } from '../../src/catalog/catalog.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { parseManifest, serializeManifest, type Manifest } from '../../src/catalog/manifest.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { AgentConfig, DatabaseConfig } from '../../src/config/normalize.ts';
import { AgentError } from '../../src/errors.ts';
import { restoreChain } from '../../src/restore/chain.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { openStorage } from '../../src/storage/open.ts';
import { verifyByRestore } from '../../src/verify/restore-depth.ts';
import { agent, sourceConnectionYaml, sourceEnv, sourceSql, storageYaml, testDir, uniqueName, writeConfig } from '../helpers.ts';

const schema = uniqueName('vr').replace('-', '_');
const ROWS = 300;
const logger = pino({ level: 'silent' });
let config: AgentConfig;
let configPath: string;
let storage: StorageDriver;

const entry = (name: string): DatabaseConfig => {
  const found = config.databases.find((d) => d.name === name);
  if (!found) throw new Error(`no entry ${name}`);
  return found;
};

async function runNow(database: string, type: string): Promise<Manifest> {
  const result = await agent(['--config', configPath, 'run-now', '--database', database, '--type', type, '--json'], sourceEnv());
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as Manifest[])[0] as Manifest;
}

/** This process's throwaway directories in TMPDIR, and the processes whose command line names one. */
async function leftovers(): Promise<{ dirs: string[]; processes: string[] }> {
  const mark = `backup-agent-verify-p${process.pid}-`;
  const dirs = (await readdir(tmpdir())).filter((name) => name.startsWith(mark));
  const processes: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(mark)) processes.push(`${pid}: ${cmdline.replace(/\0/g, ' ')}`);
  }
  return { dirs, processes };
}

async function verify(database: string, chain: Manifest[], extra: { replayBinlog?: boolean } = {}): Promise<{ problems: unknown[]; notices: string[] }> {
  const notices: string[] = [];
  const problems = await verifyByRestore({ config, storage, database: entry(database), chain, logger, onNotice: (m) => notices.push(m), ...extra });
  expect(await leftovers()).toEqual({ dirs: [], processes: [] });
  return { problems, notices };
}

beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, ROWS));
  const dir = await testDir('verify-restore');
  configPath = await writeConfig(
    dir,
    [
      'storage:',
      await storageYaml('s3'),
      'databases:',
      '  - name: logical',
      sourceConnectionYaml(),
      `    schemas: [${schema}]`,
      '    verify: { record_figures: true }',
      '  - name: plain',
      sourceConnectionYaml(),
      `    schemas: [${schema}]`,
      '  - name: phys',
      sourceConnectionYaml(),
      '    verify: { record_figures: true }',
      '',
    ].join('\n'),
  );
  config = loadConfig(configPath, { ...process.env, ...sourceEnv() });
  storage = await openStorage(entry('logical').storage);
});

afterAll(async () => {
  await storage?.close();
});

describe('verify --depth restore', () => {
  it('passes a good dump, comparing with the figures recorded at its own snapshot', async () => {
    const dump = await runNow('logical', 'dump');
    expect(dump.figures?.method).toBe('consistent-snapshot');
    expect(dump.figures?.at).toEqual(dump.binlog);
    expect(dump.figures?.tables.map((t) => [t.table, t.rows])).toEqual([
      ['audit', 0],
      ['customers', ROWS],
      ['orders', ROWS * 3],
    ]);
    const source = await sourceSql(`CHECKSUM TABLE \`${schema}\`.orders EXTENDED`);
    expect(dump.figures?.tables.find((t) => t.table === 'orders')?.checksum).toBe(source.split('\t')[1]);

    const { problems, notices } = await verify('logical', [dump]);
    expect(problems).toEqual([]);
    expect(notices).toEqual([]);
  });

  it('says when there are no figures to compare with, and still checks the tables', async () => {
    const dump = await runNow('plain', 'dump');
    expect(dump.figures).toBeUndefined();
    const { problems, notices } = await verify('plain', [dump]);
    expect(problems).toEqual([]);
    expect(notices).toEqual([`backup ${dump.id} has no figures recorded at backup time: its tables were checked against themselves only (CHECK TABLE, CHECKSUM TABLE, row counts)`]);
  });

  it('catches a dump edited to lose one row whose manifest hash and size were rewritten to match', async () => {
    const dump = await runNow('logical', 'dump');
    const object = dump.objects[0];
    if (!object) throw new Error('no data object');
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.get(object.key)) chunks.push(chunk as Buffer);
    const sql = Buffer.from((await execa('zstd', ['-d', '-c'], { input: Buffer.concat(chunks), encoding: 'buffer' })).stdout).toString('utf8');
    // The first row of the orders table's extended INSERT, dropped.
    const edited = sql.replace(/(INSERT INTO `orders` VALUES\s*)\(1,[^)]*\),\s*/, '$1');
    expect(edited.length, sql.slice(sql.indexOf('INSERT INTO `orders`'), sql.indexOf('INSERT INTO `orders`') + 300)).toBeLessThan(sql.length);
    const stored = Buffer.from((await execa('zstd', ['-3', '-c'], { input: edited, encoding: 'buffer' })).stdout);
    await storage.put(object.key, Readable.from([stored]));
    const sha256 = createHash('sha256').update(stored).digest('hex');
    const rewritten: Manifest = {
      ...dump,
      sizeBytes: stored.length,
      rawSizeBytes: Buffer.byteLength(edited),
      objects: [{ ...object, sizeBytes: stored.length, sha256, rawSizeBytes: Buffer.byteLength(edited) }],
    };
    await storage.put(manifestKeyOf(dump), Readable.from([Buffer.from(serializeManifest(rewritten))]));
    const reread = parseManifest(await streamText(await storage.get(manifestKeyOf(dump))));

    const { problems, notices } = await verify('logical', [reread]);
    expect(notices).toEqual([]);
    const recorded = dump.figures?.tables.find((t) => t.table === 'orders');
    expect(problems).toContainEqual({ backupId: dump.id, message: `${schema}.orders: ${ROWS * 3 - 1} rows, ${ROWS * 3} at backup time` });
    expect(problems).toContainEqual({ backupId: dump.id, message: expect.stringMatching(new RegExp(`^${schema}\\.orders: checksum \\d+ differs from ${recorded?.checksum} recorded at backup time$`)) });
    expect(problems).toHaveLength(2);
  });

  it('passes a physical full + incremental chain', async () => {
    const full = await runNow('phys', 'full');
    await sourceSql(`INSERT INTO \`${schema}\`.customers (name, email, created_at) VALUES ('after full', 'after-full@example.com', NOW(6))`);
    const inc = await runNow('phys', 'incremental');
    expect(inc.physical?.parent).toBe(full.id);
    const { backups } = await listBackups(storage, 'phys');
    const chain = restoreChain(backups.find((b) => b.id === inc.id) as Manifest, backups);
    expect(chain.map((m) => m.id)).toEqual([full.id, inc.id]);

    const { problems, notices } = await verify('phys', chain);
    expect(problems).toEqual([]);
    // The figures are taken right after mariadb-backup ends: on a quiet server, at its own position.
    expect(inc.figures?.at).toEqual(inc.binlog);
    expect(notices).toEqual([]);
    expect(inc.figures?.tables.find((t) => t.schema === schema && t.table === 'customers')?.rows).toBe(ROWS + 1);

    // restore --datadir --verify compares with the same figures: it passes, and once the manifest
    // claims one more customer row, it fails naming the table and both counts.
    const dir = await testDir('verify-restore-datadir');
    const good = await agent(['--config', configPath, 'restore', '--database', 'phys', '--backup', inc.id, '--datadir', join(dir, 'good'), '--verify'], sourceEnv());
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.stdout).toContain('verified: every table checks OK and has a checksum');
    const claimed = { ...inc, figures: { ...inc.figures!, tables: inc.figures!.tables.map((t) => (t.schema === schema && t.table === 'customers' ? { ...t, rows: t.rows + 1 } : t)) } };
    await storage.put(manifestKeyOf(inc), Readable.from([Buffer.from(serializeManifest(claimed))]));
    const caught = await agent(['--config', configPath, 'restore', '--database', 'phys', '--backup', inc.id, '--datadir', join(dir, 'caught'), '--verify'], sourceEnv());
    expect(caught.exitCode).toBe(1);
    expect(caught.stderr).toContain(`${schema}.customers: ${ROWS + 1} rows, ${ROWS + 2} at backup time`);
    await storage.put(manifestKeyOf(inc), Readable.from([Buffer.from(serializeManifest(inc))]));
  });

  it('refuses, before it writes anything, when TMPDIR cannot hold one datadir', async () => {
    const dump = await runNow('plain', 'dump');
    const huge: Manifest = { ...dump, rawSizeBytes: 2 ** 50 };
    const refused = await verifyByRestore({ config, storage, database: entry('plain'), chain: [huge], logger }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(AgentError);
    const { message, kind } = refused as AgentError;
    expect(kind).toBe('refused');
    expect(message).toMatch(
      new RegExp(`^verify backup ${dump.id} by restoring it: not enough free disk space in ${tmpdir()} for the throwaway datadir: about ${2 ** 51 + 256 * 1024 ** 2} bytes needed \\(.* MiB\\), \\d+ bytes free \\(.* MiB\\)$`),
    );
    expect(await leftovers()).toEqual({ dirs: [], processes: [] });
  });

  it('stops its server and removes its directory when aborted mid-restore', async () => {
    const dump = await runNow('logical', 'dump');
    const abort = new AbortController();
    const running = verifyByRestore({ config, storage, database: entry('logical'), chain: [dump], logger, signal: abort.signal });
    // Abort once the throwaway server's directory exists.
    for (let i = 0; i < 200 && (await leftovers()).dirs.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await leftovers()).dirs).toHaveLength(1);
    abort.abort(new Error('test abort'));
    await expect(running).rejects.toThrow();
    expect(await leftovers()).toEqual({ dirs: [], processes: [] });
  });
});

async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
