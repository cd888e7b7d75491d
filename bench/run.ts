// npm run bench: the agent against the raw tool pipeline, measured in the same run on the same data.
//   raw:   mariadb-dump … | zstd -1 > file
//   agent: agent run-now → local directory, and → S3 (s3rver), zstd level 1
// Prints wall-time ratios (median of BENCH_RUNS) and the agent's peak RSS. Targets: ratio ≤ 1.05
// to local storage, peak RSS ≤ 128 MiB. BENCH_SIZE_MB sets the SQL size (default ~1 GB);
// BENCH_ONLY=binlog runs only the binlog archive lag part (BENCH_BINLOG_SECONDS, BENCH_IDLE_SECONDS).
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSandbox } from '../src/sandbox/mariadb-sandbox.ts';
import { createS3Bucket, startS3Server } from '../test/harness/s3-server.ts';
import { freePort } from '../test/harness/child-process.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, '.tmp', 'bench');
const SIZE_MB = Number(process.env['BENCH_SIZE_MB'] ?? 1024);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const TABLES = 4;
const ROW_BYTES = 290; // approximate SQL bytes per generated row

interface Sample {
  seconds: number;
  maxRssKiB: number;
}

/** Runs a command under /usr/bin/time and returns wall seconds and the peak RSS of the process tree's largest member. */
async function timed(command: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  const started = process.hrtime.bigint();
  const result = await execa('/usr/bin/time', ['-f', 'RSS_KIB=%M', command, ...args], { env, reject: false, stdin: 'ignore' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitCode !== 0) throw new Error(`${command} failed (${result.exitCode}): ${String(result.stderr).slice(-2000)}`);
  const rss = /RSS_KIB=(\d+)/.exec(String(result.stderr));
  return { seconds, maxRssKiB: Number(rss?.[1] ?? 0) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('bench needs /usr/bin/time (apt-get install time)');
  await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
  const server = await startSandbox({ dir: join(DIR, 'mariadb'), port: await freePort(), agentPassword: 'bench' });
  const s3 = await startS3Server({ dir: join(DIR, 's3'), runDir: join(DIR, 'run') });
  try {
    const rowsPerTable = Math.ceil((SIZE_MB * 1024 * 1024) / ROW_BYTES / TABLES);
    process.stderr.write(`generating ~${SIZE_MB} MB of SQL (${TABLES} tables × ${rowsPerTable} rows)…\n`);
    await server.sql('CREATE DATABASE bench');
    for (let t = 1; t <= TABLES; t++) {
      await server.sql(
        `USE bench; CREATE TABLE bench.t${t} (id INT PRIMARY KEY, k INT NOT NULL, a CHAR(32) NOT NULL, b VARCHAR(255) NOT NULL, d DATETIME NOT NULL, KEY (k)) ENGINE=InnoDB;` +
          `INSERT INTO bench.t${t} SELECT seq, seq % 10007, MD5(seq * ${t}), CONCAT(SHA2(seq + ${t}, 256), ' order ', seq, ' ', MD5(seq)), ` +
          `TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_${rowsPerTable}`,
      );
    }
    await createS3Bucket(s3.endpoint, 'bench');
    const cnf = join(DIR, 'mariadb', 'my.cnf');
    const rawFile = join(DIR, 'raw.sql.zst');
    const dumpFlags = '--single-transaction --quick --routines --events --triggers --no-tablespaces --hex-blob --master-data=2 --gtid --databases bench';
    const config = (storage: string) =>
      [
        'compression: { algorithm: zstd, level: 1 }',
        'storage:',
        storage,
        'databases:',
        '  - name: bench',
        `    socket: ${server.socket}`,
        '    user: root',
        '    schemas: [bench]',
        '',
      ].join('\n');
    const localConfig = join(DIR, 'local.yaml');
    const s3Config = join(DIR, 's3.yaml');
    await writeFile(localConfig, config(`  type: local\n  path: ${join(DIR, 'store')}`));
    await writeFile(
      s3Config,
      config(
        `  type: s3\n  bucket: bench\n  endpoint: ${s3.endpoint}\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n  checksum: when_required`,
      ),
    );
    // Run the agent the way its `agent` bin does: with the node flags of its shebang line.
    const main = join(ROOT, 'dist', 'main.js');
    const shebang = (await readFile(main, 'utf8')).split('\n')[0] ?? '';
    const nodeFlags = shebang.split(/\s+/).filter((word) => word.startsWith('--'));
    if (process.env['BENCH_ONLY'] === 'binlog') {
      process.stdout.write(`${(await binlogBench(server, [...nodeFlags, main])).join('\n')}\n`);
      return;
    }
    const agentArgs = (cfg: string, type = 'dump') => [...nodeFlags, main, '--config', cfg, 'run-now', '--database', 'bench', '--type', type];

    const samples: Record<'raw' | 'local' | 's3' | 'rawPhysical' | 'physical' | 'restore', Sample[]> = {
      raw: [],
      local: [],
      s3: [],
      rawPhysical: [],
      physical: [],
      restore: [],
    };
    const lsnDir = join(DIR, 'raw-lsn');
    const rawPhysicalFile = join(DIR, 'raw.xbstream.zst');
    for (let run = 1; run <= RUNS; run++) {
      // Interleaved so drift in machine load hits every variant alike.
      samples.raw.push(await timed('bash', ['-c', `set -o pipefail; mariadb-dump --defaults-file=${cnf} ${dumpFlags} | zstd -1 -q > ${rawFile}`]));
      samples.local.push(await timed(process.execPath, agentArgs(localConfig)));
      samples.s3.push(await timed(process.execPath, agentArgs(s3Config)));
      process.stderr.write(`run ${run}/${RUNS}: raw ${samples.raw.at(-1)?.seconds.toFixed(2)} s, local ${samples.local.at(-1)?.seconds.toFixed(2)} s, s3 ${samples.s3.at(-1)?.seconds.toFixed(2)} s\n`);
      // Physical: mariadb-backup | zstd -1 > file against agent run-now --type full, same data.
      await rm(lsnDir, { recursive: true, force: true });
      await mkdir(lsnDir, { recursive: true });
      samples.rawPhysical.push(
        await timed('bash', ['-c', `set -o pipefail; mariadb-backup --defaults-file=${cnf} --user=root --backup --stream=xbstream --extra-lsndir=${lsnDir} --target-dir=${lsnDir} 2>/dev/null | zstd -1 -q > ${rawPhysicalFile}`]),
      );
      samples.physical.push(await timed(process.execPath, agentArgs(localConfig, 'full')));
      process.stderr.write(`run ${run}/${RUNS}: physical raw ${samples.rawPhysical.at(-1)?.seconds.toFixed(2)} s, agent ${samples.physical.at(-1)?.seconds.toFixed(2)} s\n`);
    }
    // Restore time of a chain: full + one incremental after some writes, into a new datadir.
    await server.sql('UPDATE bench.t1 SET k = k + 1 WHERE id % 50 = 0');
    await timed(process.execPath, agentArgs(localConfig, 'incremental'));
    const restoreDir = join(DIR, 'restored');
    samples.restore.push(await timed(process.execPath, [...nodeFlags, main, '--config', localConfig, 'restore', '--database', 'bench', '--datadir', restoreDir]));
    await rm(restoreDir, { recursive: true, force: true });
    const raw = median(samples.raw.map((s) => s.seconds));
    const rawSize = (await stat(rawFile)).size;
    const row = (name: string, xs: Sample[], target?: string, baseline = raw) => {
      const secs = median(xs.map((s) => s.seconds));
      const rss = Math.max(...xs.map((s) => s.maxRssKiB)) / 1024;
      return `${name.padEnd(34)} ${secs.toFixed(2).padStart(7)} s  ratio ${(secs / baseline).toFixed(3)}${target ? ` (target ${target})` : ''}  peak RSS ${rss.toFixed(0)} MiB`;
    };
    const lines = [
      `backup-agent bench — ${SIZE_MB} MB of SQL, ${RUNS} runs, median wall time; zstd level 1 everywhere; agent node flags: ${nodeFlags.join(' ') || 'none'}`,
      `compressed size: ${(rawSize / 1024 / 1024).toFixed(1)} MiB`,
      `${'mariadb-dump | zstd -1 > file'.padEnd(34)} ${raw.toFixed(2).padStart(7)} s  ratio 1.000`,
      row('agent run-now → local', samples.local, '≤ 1.05'),
      row('agent run-now → S3 (s3rver)', samples.s3),
      `${'mariadb-backup | zstd -1 > file'.padEnd(34)} ${median(samples.rawPhysical.map((s) => s.seconds)).toFixed(2).padStart(7)} s  ratio 1.000 (physical)`,
      row('agent run-now --type full → local', samples.physical, '≤ 1.05', median(samples.rawPhysical.map((s) => s.seconds))),
      row('restore --datadir (full + 1 incr.)', samples.restore),
      `peak RSS target for the agent: ≤ 128 MiB`,
      ...(await binlogBench(server, [...nodeFlags, main])),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await s3.stop();
    await server.stop();
    if (!process.env['BENCH_KEEP']) await rm(DIR, { recursive: true, force: true });
  }
}

/**
 * Binlog archive lag under a sysbench write load: every 250 ms the primary's binlog position is
 * sampled; a sample's lag is the time until the archive (local storage) has committed a segment
 * reaching it. Then an idle minute: objects the capture uploads while nothing is written, as
 * requests per hour. The capture runs as `agent binlog capture` with the default segment settings.
 */
async function binlogBench(server: Awaited<ReturnType<typeof startSandbox>>, agent: string[]): Promise<string[]> {
  if (!existsSync('/usr/bin/sysbench')) return ['binlog lag: skipped, sysbench is not installed (apt-get install sysbench; scripts/setup.sh does)'];
  const seconds = Number(process.env['BENCH_BINLOG_SECONDS'] ?? 30);
  const idleSeconds = Number(process.env['BENCH_IDLE_SECONDS'] ?? 60);
  const store = join(DIR, 'binlog-store');
  const config = join(DIR, 'binlog.yaml');
  await writeFile(
    config,
    ['storage:', `  type: local`, `  path: ${store}`, 'databases:', '  - name: bench', `    socket: ${server.socket}`, '    user: root', `    binlog: { enabled: true, spool_dir: ${join(DIR, 'spool')} }`, ''].join('\n'),
  );
  const sb = ['--db-driver=mysql', `--mysql-socket=${server.socket}`, '--mysql-user=root', '--mysql-db=sbtest', '--tables=4', '--table-size=20000'];
  await server.sql('CREATE DATABASE IF NOT EXISTS sbtest');
  await execa('sysbench', ['oltp_write_only', ...sb, 'prepare'], { stdin: 'ignore' });
  await execa(process.execPath, [...agent, '--config', config, 'run-now'], { stdin: 'ignore' });
  const capture = execa(process.execPath, [...agent, '--config', config, 'binlog', 'capture'], { reject: false, stdin: 'ignore' });

  /** Archived end position per binlog file, from the segment manifests' names. */
  const archived = async (file: string): Promise<number> => {
    const names = await readdir(join(store, 'bench', 'binlog', file)).catch(() => [] as string[]);
    return Math.max(0, ...names.flatMap((n) => /^\d{12}-(\d{12})\.json$/.exec(n)?.[1] ?? []).map(Number));
  };
  // The capture starts at the dump's binlog file from 0: let it archive that backlog first, so the
  // samples measure the steady state under load, not the catch-up.
  const [startFile, startPosition] = (await server.sql('SHOW MASTER STATUS')).split('\t');
  for (let i = 0; (await archived(startFile ?? '')) < Number(startPosition); i++) {
    if (i > 1200) throw new Error('binlog capture did not catch up with the backlog within 2 minutes');
    await sleep(100);
  }
  const pending: { file: string; position: number; at: number }[] = [];
  const lags: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [file, position] = (await server.sql('SHOW MASTER STATUS')).split('\t');
      if (file && position) pending.push({ file, position: Number(position), at: Date.now() });
      await sleep(250);
    }
  })();
  const watcher = (async () => {
    while (sampling || pending.length > 0) {
      const files = new Map<string, number>();
      for (const p of [...pending]) {
        const end = files.get(p.file) ?? (await archived(p.file));
        files.set(p.file, end);
        if (end >= p.position) {
          lags.push((Date.now() - p.at) / 1000);
          pending.splice(pending.indexOf(p), 1);
        }
      }
      await sleep(20);
    }
  })();
  const run = await execa('sysbench', ['oltp_write_only', ...sb, '--threads=2', `--time=${seconds}`, 'run'], { stdin: 'ignore' });
  const tps = /transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(String(run.stdout))?.[1] ?? '?';
  sampling = false;
  await sampler;
  await Promise.race([watcher, sleep(60_000)]);
  const count = async () => (await readdir(join(store, 'bench', 'binlog'), { recursive: true })).filter((n) => String(n).endsWith('.json')).length;
  const before = await count();
  await sleep(idleSeconds * 1000);
  const idleObjects = (await count()) - before;
  // Peak RSS of the capture process itself (VmHWM), read before it stops.
  const hwm = await readFile(`/proc/${capture.pid}/status`, 'utf8').catch(() => '');
  const rss = Number(/VmHWM:\s+(\d+) kB/.exec(hwm)?.[1] ?? 0) / 1024;
  capture.kill('SIGTERM');
  await capture;
  const sorted = [...lags].sort((a, b) => a - b);
  const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return [
    `binlog archive lag under sysbench oltp_write_only (2 threads, ${seconds} s, ${tps} tps), default segments (16 MiB / 3 s):`,
    `  p50 ${pct(0.5).toFixed(2)} s  p95 ${pct(0.95).toFixed(2)} s  max ${(sorted.at(-1) ?? NaN).toFixed(2)} s over ${sorted.length} samples (target p95 ≤ 5 s); capture peak RSS ${rss.toFixed(0)} MiB`,
    `idle database: ${idleObjects} segment uploads in ${idleSeconds} s → ${((idleObjects * 2 * 3600) / idleSeconds).toFixed(0)} object-store requests per hour`,
  ];
}

await main();
