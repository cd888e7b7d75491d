// Binlog archiving and point-in-time recovery against real parts: a throwaway MariaDB (its own,
// so the test may kill it), the real `agent daemon` capturing its binlog into S3 (s3rver), a
// continuous write load, and restores into fresh servers. The source's checksums at the target
// time are recorded while writes are paused around it; markers written before and after tell
// where the restore landed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import mysql from 'mysql2/promise';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { captureArchived, captureConnected } from '../harness/binlog-capture.ts';
import { freePort } from '../harness/child-process.ts';
import { s3Client } from '../harness/s3-server.ts';
import { AGENT, agent, FIXTURES, freshServer, storageYaml, testDir, writeConfig } from '../helpers.ts';

const SCHEMA = 'shop';
const PASSWORD = 'pitr-pw';
let dir: string;
let source: Sandbox;
let sourcePort: number;
let config: string;
let daemonPort: number;
let daemon: ResultPromise | undefined;
const daemonLog: string[] = [];

const tables = ['customers', 'orders', 'audit', 'load_test'];
const checksums = (sql: (s: string) => Promise<string>) => sql(`CHECKSUM TABLE ${tables.map((t) => `${SCHEMA}.${t}`).join(', ')} EXTENDED`);

/** Inserts rows on its own connection until stopped; reconnects while the server is down. */
function writeLoad(): { stop(): Promise<number> } {
  let running = true;
  let rows = 0;
  const done = (async () => {
    while (running) {
      let db: mysql.Connection | undefined;
      try {
        db = await mysql.createConnection({ host: '127.0.0.1', port: sourcePort, user: 'agent', password: PASSWORD });
        while (running) {
          await db.query(`INSERT INTO ${SCHEMA}.load_test (v) VALUES (REPEAT(MD5(RAND()), 4))`);
          rows++;
          if (rows % 20 === 0) await sleep(5);
        }
      } catch {
        await sleep(100); // the server is restarting
      } finally {
        await db?.end().catch(() => undefined);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return rows;
    },
  };
}

/** Resolves at the start of the next whole second plus `slackMs`, and returns that second. */
async function nextSecond(slackMs = 50): Promise<Date> {
  const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await sleep(next - Date.now() + slackMs);
  return new Date(next);
}

const sql = (s: string) => source.sql(s);

beforeAll(async () => {
  dir = await testDir('pitr');
  sourcePort = await freePort();
  source = await startSandbox({ dir: join(dir, 'source'), port: sourcePort, serverId: 21, agentPassword: PASSWORD });
  await sql(sampleDataSql(SCHEMA, 500));
  await sql(`CREATE TABLE ${SCHEMA}.load_test (id BIGINT PRIMARY KEY AUTO_INCREMENT, v TEXT NOT NULL) ENGINE=InnoDB`);
  await sql(`CREATE TABLE ${SCHEMA}.markers (label VARCHAR(32) PRIMARY KEY, at DATETIME(3) NOT NULL DEFAULT NOW(3)) ENGINE=InnoDB`);
  daemonPort = await freePort();
  config = await writeConfig(
    dir,
    [
      'storage:',
      await storageYaml('s3'),
      'daemon:',
      `  listen_port: ${daemonPort}`,
      '  catch_up: false',
      'databases:',
      '  - name: source',
      '    host: 127.0.0.1',
      `    port: ${sourcePort}`,
      '    user: agent',
      '    password: ${SOURCE_PW}',
      '    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ' + join(dir, 'spool') + ' }',
      '',
    ].join('\n'),
  );
  daemon = execa(process.execPath, [AGENT, '--config', config, 'daemon'], { env: { SOURCE_PW: PASSWORD }, reject: false, stdin: 'ignore', buffer: false, all: true });
  daemon.all?.on('data', (chunk: Buffer) => daemonLog.push(chunk.toString()));
  await captureConnected(daemonPort, 'source', () => daemonLog.join(''));
}, 60_000);

afterAll(async () => {
  daemon?.kill('SIGTERM');
  await daemon;
  await source?.stop();
});

/** Restores into a fresh server (or `into`) as entry `target` and returns the result and the server. */
async function restoreInto(flags: string[], into?: Sandbox, binlog = false): Promise<{ result: Awaited<ReturnType<typeof agent>>; server: Sandbox }> {
  const server = into ?? (await freshServer('pitr-target'));
  const targetConfig = await writeConfig(
    await testDir('pitr-target'),
    (await readFile(config, 'utf8')) + ['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw', ''].join('\n'),
  );
  const result = await agent(['--config', targetConfig, 'restore', '--database', 'source', '--target', 'target', ...(binlog ? [] : ['--no-binlog']), ...flags], { SOURCE_PW: PASSWORD });
  return { result, server };
}

describe('binlog capture and point-in-time recovery', () => {
  let T: Date;
  let expected: string;
  let gtidAtT: string;

  it('archives under a write load across a server crash, and restores a dump + binlog to an exact second', async () => {
    const load = writeLoad();
    await sleep(500);
    const dump = await agent(['--config', config, 'run-now', '--json'], { SOURCE_PW: PASSWORD });
    expect(dump.exitCode).toBe(0);
    await sleep(700);

    // Pause the writes around T: everything before has a binlog timestamp < T, everything after > T.
    await load.stop();
    // Writes after the base to a schema the dump does not hold, and to mysql.*: never replayed. One
    // statement writes both schemas (its statement-end flag is on the other schema's rows).
    await sql(`CREATE DATABASE other; CREATE TABLE other.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO other.t SELECT seq, 'x' FROM other.seq_1_to_10`);
    await sql(`CREATE USER 'ghost'@'%' IDENTIFIED BY 'boo'; CREATE TABLE mysql.agent_probe (id INT PRIMARY KEY); INSERT INTO mysql.agent_probe VALUES (1)`);
    await sql(`UPDATE ${SCHEMA}.customers c JOIN other.t o ON o.id = c.id SET c.note = 'cross', o.v = 'cross'`);
    await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('before-T')`);
    await sql(`UPDATE ${SCHEMA}.customers SET note = 'changed before T' WHERE id % 7 = 0`);
    expected = await checksums(sql);
    gtidAtT = await sql('SELECT @@gtid_binlog_pos');
    T = await nextSecond();
    await nextSecond(100); // T + 1 s: the next writes are stamped after T
    await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('after-T')`);
    await sql(`UPDATE ${SCHEMA}.customers SET note = 'changed after T' WHERE id % 5 = 0`);
    const load2 = writeLoad();
    await sleep(800);

    // Crash the server mid-stream and bring it back: the capture reconnects and goes on, no gap.
    process.kill(source.pid, 'SIGKILL');
    await sleep(500);
    source = await startSandbox({ dir: join(dir, 'source'), port: sourcePort, serverId: 21, existingDatadir: join(dir, 'source', 'data') });
    await sleep(1500);
    const rows = await load2.stop();
    expect(rows).toBeGreaterThan(10);
    const lastWrite = new Date();
    await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('after-restart')`);
    await captureArchived(daemonPort, 'source', () => daemonLog.join(''), lastWrite.getTime());

    const archive = await agent(['--config', config, 'binlog', 'list', '--json'], { SOURCE_PW: PASSWORD });
    const [summary] = JSON.parse(archive.stdout) as { runs: unknown[]; gaps: unknown[]; lastRecoverableAt: string; base: string }[];
    expect(summary?.gaps).toEqual([]);
    expect(summary?.runs).toHaveLength(1);
    expect(Date.parse(summary?.lastRecoverableAt ?? '')).toBeGreaterThanOrEqual(Math.floor(lastWrite.getTime() / 1000) * 1000);
    expect(summary?.base).toBe((JSON.parse(dump.stdout) as { id: string }[])[0]?.id);
    expect(daemonLog.join('')).toContain('binlog capture interrupted; reconnecting');

    const { result, server } = await restoreInto(['--to-time', T.toISOString()]);
    try {
      expect(result.stderr).toContain('Selected base dump');
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/then replayed \d+ transactions of binlog up to /);
      expect(await server.sql(`SELECT label FROM ${SCHEMA}.markers ORDER BY label`)).toBe('before-T');
      expect(await checksums(server.sql)).toBe(expected);
      // ids 1–10 got 'cross'; id 7 was then changed again before T.
      expect(await server.sql(`SELECT GROUP_CONCAT(id ORDER BY id) FROM ${SCHEMA}.customers WHERE note = 'cross'`)).toBe('1,2,3,4,5,6,8,9,10');
      expect(await server.sql("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'other'")).toBe('0');
      expect(await server.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'ghost'")).toBe('0');
      expect(await server.sql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'mysql' AND table_name = 'agent_probe'")).toBe('0');
    } finally {
      await server.stop();
    }
  });

  it('restores a physical chain + binlog into a datadir at an exact second', async () => {
    const load = writeLoad();
    await sleep(300);
    const full = await agent(['--config', config, 'run-now', '--type', 'full'], { SOURCE_PW: PASSWORD });
    expect(full.exitCode).toBe(0);
    await sleep(300);
    const inc = await agent(['--config', config, 'run-now', '--type', 'incremental', '--json'], { SOURCE_PW: PASSWORD });
    expect(inc.exitCode).toBe(0);
    await sleep(500);
    await load.stop();
    await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('before-T2')`);
    const expected2 = await checksums(sql);
    const T2 = await nextSecond();
    await nextSecond(100);
    await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('after-T2')`);
    await sql(`DELETE FROM ${SCHEMA}.load_test WHERE id % 3 = 0`);
    await captureArchived(daemonPort, 'source', () => daemonLog.join(''));

    const datadir = join(dir, 'pitr-datadir');
    const result = await agent(['--config', config, 'restore', '--database', 'source', '--datadir', datadir, '--to-time', T2.toISOString()], { SOURCE_PW: PASSWORD });
    expect(result.stderr).toContain(`Selected base incremental ${(JSON.parse(inc.stdout) as { id: string }[])[0]?.id}`);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/restored full \S+ \+ incremental \S+ of source into .*, then replayed \d+ transactions of binlog up to /);
    const server = await startSandbox({ dir: join(dir, 'pitr-datadir-server'), port: 0, existingDatadir: datadir, serverId: 31, private: true });
    try {
      expect(await server.sql(`SELECT label FROM ${SCHEMA}.markers WHERE label LIKE '%T2' ORDER BY label`)).toBe('before-T2');
      expect(await checksums(server.sql)).toBe(expected2);
    } finally {
      await server.stop();
    }
  });

  it('restores to a GTID: up to and including that transaction', async () => {
    const { result, server } = await restoreInto(['--to-gtid', gtidAtT]);
    try {
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain(`the last replayed transaction is ${gtidAtT}`);
      expect(await server.sql(`SELECT label FROM ${SCHEMA}.markers ORDER BY label`)).toBe('before-T');
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }
  });

  it('replays into a binlogged target with gtid_strict_mode=ON whose GTID sequence is ahead of the source', async () => {
    const strict = await freshServer('pitr-strict');
    await strict.sql('SET SESSION gtid_seq_no = 1000000000; CREATE DATABASE scratch');
    expect(await strict.sql('SELECT @@gtid_strict_mode, @@log_bin')).toBe('1\t1');
    const { result, server } = await restoreInto(['--to-time', T.toISOString()], strict, true);
    try {
      expect(result.stderr).not.toContain('error:');
      expect(result.exitCode).toBe(0);
      expect(await server.sql(`SELECT label FROM ${SCHEMA}.markers ORDER BY label`)).toBe('before-T');
      expect(await checksums(server.sql)).toBe(expected);
      // The target numbered the replayed transactions itself, after its own.
      const [domain, serverId, sequence] = (await server.sql('SELECT @@gtid_binlog_pos')).split('-');
      expect(domain).toBe('0');
      expect(serverId).toBe(await server.sql('SELECT @@server_id'));
      expect(Number(sequence)).toBeGreaterThan(1_000_000_000);
    } finally {
      await server.stop();
    }
  });

  it('refuses before writing anything when the target user cannot replay binlog', async () => {
    const server = await freshServer('pitr-limited');
    try {
      await server.sql("CREATE USER 'limited'@'127.0.0.1' IDENTIFIED BY 'lim-pw'; GRANT ALL ON *.* TO 'limited'@'127.0.0.1'; REVOKE SUPER, BINLOG REPLAY ON *.* FROM 'limited'@'127.0.0.1'");
      const limitedConfig = await writeConfig(
        await testDir('pitr-limited'),
        (await readFile(config, 'utf8')) + ['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: limited', '    password: lim-pw', ''].join('\n'),
      );
      const result = await agent(['--config', limitedConfig, 'restore', '--database', 'source', '--target', 'target', '--to-time', T.toISOString()], { SOURCE_PW: PASSWORD });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain("error: restore into target: replaying binlog needs the BINLOG REPLAY (or SUPER) privilege, which 'limited'@'127.0.0.1' lacks; nothing was written");
      expect(result.stderr).toContain("hint: GRANT BINLOG REPLAY ON *.* TO 'limited'@'127.0.0.1'");
      expect(await server.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${SCHEMA}'`)).toBe('0');
    } finally {
      await server.stop();
    }
  });

  it('a corrupt binlog segment is found before the base is applied: exit 1, checksum mismatch, nothing written', async () => {
    const bucket = /bucket: (\S+)/.exec(await readFile(config, 'utf8'))?.[1] ?? '';
    const client = s3Client(inject('s3').endpoint);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'backups/prod/source/binlog/' }));
    const key = (listed.Contents ?? []).map((o) => o.Key ?? '').filter((k) => /\.binlog(\.\w+)?$/.test(k)).sort()[0] ?? '';
    const original = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToByteArray() ?? []);
    const bad = Buffer.from(original);
    const middle = Math.floor(bad.length / 2);
    bad.writeUInt8((bad[middle] ?? 0) ^ 0x20, middle);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bad }));
    try {
      const { result, server } = await restoreInto(['--to-time', T.toISOString()]);
      try {
        expect(result.exitCode).toBe(1);
        expect(result.stderr).toContain(`error: point-in-time restore: binlog segment ${key.replace('backups/prod/', '')}: checksum mismatch: SHA-256`);
        expect(result.stderr).toContain('; nothing was written');
        expect(await server.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${SCHEMA}'`)).toBe('0');
      } finally {
        await server.stop();
      }
    } finally {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: original }));
      client.destroy();
    }
  });

  it('refuses a target past the archive, naming the last recoverable time; and one before any base', async () => {
    const future = await agent(['--config', config, 'restore', '--database', 'source', '--to-time', '2099-01-01T00:00:00Z'], { SOURCE_PW: PASSWORD });
    expect(future.exitCode).toBe(1);
    expect(future.stderr).toMatch(/error: point-in-time restore to 2099-01-01T00:00:00.000Z: it is past the end of the binlog archive; the last recoverable time is 20\d\d-/);
    const past = await agent(['--config', config, 'restore', '--database', 'source', '--to-time', '2001-01-01T00:00:00Z'], { SOURCE_PW: PASSWORD });
    expect(past.exitCode).toBe(1);
    expect(past.stderr).toContain('error: point-in-time restore of source to 2001-01-01T00:00:00.000Z: no dump with binlog coordinates was taken before it');
    const bad = await agent(['--config', config, 'restore', '--database', 'source', '--to-time', '10:32'], { SOURCE_PW: PASSWORD });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('error: --to-time 10:32: not an ISO 8601 time with a zone');
  });

  it('a replay the SQL client stops reports the client\'s error', async () => {
    const server = await freshServer('pitr-bad-replay');
    try {
      const badConfig = await writeConfig(
        await testDir('pitr-bad-replay'),
        (await readFile(config, 'utf8')).replace('storage:', `tools: { binlog: ${join(FIXTURES, 'bad-sql-binlog.sh')} }\nstorage:`) +
          ['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw', ''].join('\n'),
      );
      const result = await agent(['--config', badConfig, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString()], { SOURCE_PW: PASSWORD });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/error: replay mysql-bin\.\d+ into target: mariadb exited with code 1: ERROR 1064 \(42000\) at line \d+: You have an error in your SQL syntax\n/);
      expect(result.stderr).toContain('hint: the SQL client stopped there; the target holds the base and part of the replay');
    } finally {
      await server.stop();
    }
  });

  it('shows the last recoverable time and the lag in status, list and /metrics', async () => {
    // The dump came from `run-now`, not the daemon: the daemon finds it in the catalog within ~10 s.
    let status = await agent(['--config', config, 'status'], { SOURCE_PW: PASSWORD });
    for (let i = 0; i < 30 && /LAST RECOVERABLE TIME\n.* none$/m.test(status.stdout); i++) {
      await sql(`INSERT INTO ${SCHEMA}.markers (label) VALUES ('tick-${i}')`);
      await sleep(1000);
      status = await agent(['--config', config, 'status'], { SOURCE_PW: PASSWORD });
    }
    expect(status.stdout).toMatch(/source\s+connected\s+\d+\.\d s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\s+\d{4}-\d\d-\d\d/);
    const list = await agent(['--config', config, 'list'], { SOURCE_PW: PASSWORD });
    expect(list.stdout).toMatch(/source: binlog archive of \d+ segments up to .*; last recoverable time: \d{4}-/);
    const metrics = await (await fetch(`http://127.0.0.1:${daemonPort}/metrics`)).text();
    const recoverable = /backup_agent_binlog_last_recoverable_timestamp_seconds\{database="source"\} (\d+)/.exec(metrics)?.[1];
    expect(Number(recoverable)).toBeGreaterThan(T.getTime() / 1000);
    expect(metrics).toMatch(/backup_agent_binlog_connected\{database="source"\} 1/);
    expect(metrics).toMatch(/backup_agent_binlog_lag_seconds\{database="source"\} \d/);
    expect(metrics).toMatch(/backup_agent_binlog_segments_total\{database="source"\} [1-9]/);
  });

  it('retention keeps the pitr_window base and the binlog from it on; without a window, binlog before the oldest kept backup goes', async () => {
    // A new dump in the current binlog file (the crash rotated it), then two retention policies.
    const fresh = await agent(['--config', config, 'run-now', '--json'], { SOURCE_PW: PASSWORD });
    expect(fresh.exitCode).toBe(0);
    const freshBase = (JSON.parse(fresh.stdout) as { id: string; binlog: { file: string } }[])[0];
    const withRetention = async (retention: string) =>
      writeConfig(await testDir('pitr-prune'), (await readFile(config, 'utf8')).replace('    user: agent\n', `    user: agent\n    retention: ${retention}\n`));

    const windowed = await withRetention('{ manual: { keep_last: 1 }, pitr_window: 1h }');
    const dry = await agent(['--config', windowed, 'prune', '--dry-run', '--json'], { SOURCE_PW: PASSWORD });
    const [plan] = JSON.parse(dry.stdout) as { keep: { type: string; reasons: string[] }[]; binlog: { keepFrom: string; remove: unknown[] } }[];
    expect(plan?.keep.find((k) => k.reasons.some((r) => r.startsWith('pitr_window')))).toMatchObject({ type: 'dump', reasons: ['pitr_window 1h base (oldest; the window reaches further back)'] });
    expect(plan?.binlog).toMatchObject({ keepFrom: 'mysql-bin.000001', remove: [] });

    const plain = await withRetention('{ manual: { keep_last: 1 } }');
    // Retention families: the physical chain of the earlier test keeps its own newest, so its
    // full is the oldest kept backup with binlog coordinates (in the same, rotated-to file).
    const listed = JSON.parse((await agent(['--config', config, 'list', '--json'], { SOURCE_PW: PASSWORD })).stdout) as { id: string; type: string; binlog: { file: string } | null }[];
    const chainFull = listed.find((b) => b.type === 'full');
    expect(chainFull?.binlog?.file).toBe(freshBase?.binlog.file);
    const pruned = await agent(['--config', plain, 'prune'], { SOURCE_PW: PASSWORD });
    expect(pruned.exitCode).toBe(0);
    expect(pruned.stdout).toContain(`binlog: keeping from ${freshBase?.binlog.file} on: full ${chainFull?.id} starts there (the oldest kept backup with binlog coordinates); removed`);
    const after = JSON.parse((await agent(['--config', config, 'binlog', 'list', '--json'], { SOURCE_PW: PASSWORD })).stdout) as { runs: { from: { file: string; position: number } }[]; gaps: unknown[]; base: string }[];
    expect(after[0]?.runs[0]?.from).toMatchObject({ file: freshBase?.binlog.file, position: 0 });
    expect(after[0]?.gaps).toEqual([]);
    expect(after[0]?.base).toBe(freshBase?.id);
    // The earlier target has no base any more: refused, with the new last recoverable time.
    const gone = await agent(['--config', config, 'restore', '--database', 'source', '--to-time', T.toISOString()], { SOURCE_PW: PASSWORD });
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain('no dump with binlog coordinates was taken before it');
  });
});
