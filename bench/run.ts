// npm run bench: the agent against the raw tool pipelines, measured in the same run on the same
// data, interleaved (run 1 of every row, then run 2, …) so drift in machine load hits every row
// alike. Prints a markdown table: median and range of wall seconds, MB/s, peak RSS, and each agent
// row's ratio to its raw row. The raw rows stay in the table so a reader can recompute the ratios.
//   raw:   mariadb-dump … | zstd -1 > file (and + fsync), … | zstd -1 | aws s3 cp - (s3rver),
//          mariadb-backup --stream=xbstream | zstd -1 > file (and + fsync)
//   raw:   sha256sum FILE && zstd -t FILE over the newest local dump object
//   agent: run-now dump / full / incremental → local and → S3 (s3rver); verify --depth archive of that dump; a dump → local encrypted
//          with age to a recipient (the CLI) and to a passphrase (the library in a worker thread),
//          compared to the unencrypted agent row, not to a raw one; --version; list (empty)
// Peak RSS of an agent row is VmHWM of the node process alone (bench/hwm.mjs), not of its tools.
// BENCH_SIZE_MB sets the SQL size (default 1024; 64 for a quick run), BENCH_RUNS the repeats
// (default 3), BENCH_BINLOG=0 skips the binlog lag part; BENCH_ONLY=binlog runs only that part
// (BENCH_BINLOG_SECONDS, BENCH_IDLE_SECONDS). BENCH_S3_PART_MB / BENCH_S3_QUEUE override the S3
// store's part_size_mb / upload_concurrency; BENCH_ROWS=regex runs only matching rows.
// Needs /usr/bin/time, zstd, age, and awscli (for the S3 raw row).
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSandbox } from '../src/sandbox/mariadb-sandbox.ts';
import { createS3Bucket, startS3Server } from '../test/harness/s3-server.ts';
import { freePort } from '../test/harness/child-process.ts';
import { timedAgent, timedShell, type Sample } from './measure.ts';
import { renderTable, type Row } from './table.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, '.tmp', 'bench');
const SIZE_MB = Number(process.env['BENCH_SIZE_MB'] ?? 1024);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const STARTUP_RUNS = 10;
const TABLES = 4;
const ROW_BYTES = 185; // SQL bytes per generated row, as measured (1024 MB asked → ~1 GB dumped)
/** The stock AWS CLI v2 (Debian's awscli); a pyenv `aws` v1 may come first on PATH. */
const AWS = '/usr/bin/aws';

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('bench needs /usr/bin/time (apt-get install time)');
  const haveAws = existsSync(AWS);
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
    // An age key pair for the encrypted row: the config names only the public key.
    await execa('age-keygen', ['-o', join(DIR, 'age-key.txt')]);
    const recipient = (await execa('age-keygen', ['-y', join(DIR, 'age-key.txt')])).stdout.trim();
    const config = (storage: string, extra: string[] = []) =>
      [
        'compression: { algorithm: zstd, level: 1 }',
        ...extra,
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
    const encryptedConfig = join(DIR, 'encrypted.yaml');
    // The passphrase row: age's scrypt recipient by the age-encryption library in a worker thread,
    // at age's default work factor (18).
    const passphraseConfig = join(DIR, 'passphrase.yaml');
    await writeFile(join(DIR, 'passphrase.txt'), 'bench-passphrase-not-secret\n', { mode: 0o600 });
    const emptyConfig = join(DIR, 'empty.yaml');
    await writeFile(localConfig, config(`  type: local\n  path: ${join(DIR, 'store')}`));
    await writeFile(emptyConfig, config(`  type: local\n  path: ${join(DIR, 'empty-store')}`));
    await writeFile(encryptedConfig, config(`  type: local\n  path: ${join(DIR, 'encrypted-store')}`, ['encryption:', `  recipients: [${recipient}]`]));
    await writeFile(passphraseConfig, config(`  type: local\n  path: ${join(DIR, 'passphrase-store')}`, ['encryption:', `  passphrase_file: ${join(DIR, 'passphrase.txt')}`]));
    await writeFile(
      s3Config,
      config(
        `  type: s3\n  bucket: bench\n  endpoint: ${s3.endpoint}\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n  checksum: when_required` +
          (process.env['BENCH_S3_PART_MB'] ? `\n  part_size_mb: ${process.env['BENCH_S3_PART_MB']}` : '') +
          (process.env['BENCH_S3_QUEUE'] ? `\n  upload_concurrency: ${process.env['BENCH_S3_QUEUE']}` : ''),
      ),
    );
    // Run the agent the way its `agent` bin does: with the node flags of its shebang line.
    const main = join(ROOT, 'dist', 'main.js');
    const shebang = (await readFile(main, 'utf8')).split('\n')[0] ?? '';
    const nodeFlags = shebang.split(/\s+/).filter((word) => word.startsWith('--'));
    if (process.env['BENCH_ONLY'] === 'binlog') {
      process.stdout.write(`${(await binlogBenches(server, [...nodeFlags, main], s3.endpoint)).join('\n')}\n`);
      return;
    }
    const agent = (cfg: string, ...args: string[]) => [...nodeFlags, main, '--config', cfg, ...args];
    const runNow = (cfg: string, type: string) => agent(cfg, 'run-now', '--database', 'bench', '--type', type, '--json');
    const env = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root' };
    const awsEnv = { ...env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_DEFAULT_REGION: 'us-east-1', AWS_CA_BUNDLE: '' };

    const rawDump = `mariadb-dump --defaults-file=${cnf} ${dumpFlags} | zstd -1 -q`;
    const rawBackup = (lsn: string) => `rm -rf ${lsn} && mkdir -p ${lsn} && mariadb-backup --defaults-file=${cnf} --user=root --backup --stream=xbstream --extra-lsndir=${lsn} --target-dir=${lsn} 2>/dev/null | zstd -1 -q`;
    const rawPhysicalFile = join(DIR, 'raw.xbstream.zst');
    const RAW_DUMP = 'raw: mariadb-dump | zstd -1 > file';
    const RAW_AWS = 'raw: mariadb-dump | zstd -1 | aws s3 cp -';
    const RAW_BACKUP = 'raw: mariadb-backup | zstd -1 > file';
    const RAW_VERIFY = 'raw: sha256sum + zstd -t (newest dump, local)';
    const local = { ratio: 1.0 };
    /** Each step of one round, in order; a row's samples are collected over the rounds. */
    const steps: (Omit<Row, 'samples' | 'bytes'> & { bytes: 'dump' | 'full' | 'none'; run: () => Promise<Sample> })[] = [
      { name: RAW_DUMP, bytes: 'dump', rss: 'tree', run: () => timedShell(`${rawDump} > ${rawFile}`) },
      { name: `${RAW_DUMP} + fsync`, bytes: 'dump', rss: 'tree', baseline: RAW_DUMP, run: () => timedShell(`${rawDump} > ${rawFile} && sync ${rawFile}`) },
      { name: 'agent: dump → local', bytes: 'dump', rss: 'agent', baseline: RAW_DUMP, target: local, run: () => timedAgent(DIR, runNow(localConfig, 'dump'), env) },
      // The newest dump object of the local store, checked by the stock tools (two reads, the second from the page cache) and by `agent verify` (one read feeding SHA-256 and zstd -d).
      { name: RAW_VERIFY, bytes: 'dump', rss: 'tree', run: () => timedShell(`f=$(ls -1 ${join(DIR, 'store', 'bench', 'backups')}/*/dump.sql.zst | tail -n 1) && sha256sum "$f" > /dev/null && zstd -t -q "$f"`) },
      { name: 'agent: verify --depth archive (local)', bytes: 'dump', rss: 'agent', baseline: RAW_VERIFY, target: { ratio: 1.1 }, run: () => timedAgent(DIR, agent(localConfig, 'verify', '--database', 'bench', '--latest', '--depth', 'archive'), env) },
      { name: 'agent: dump → local, age-encrypted', bytes: 'dump', rss: 'agent', baseline: 'agent: dump → local', target: { ratio: 1.05 }, run: () => timedAgent(DIR, runNow(encryptedConfig, 'dump'), env) },
      { name: 'agent: dump → local, age passphrase (worker)', bytes: 'dump', rss: 'agent', baseline: 'agent: dump → local', run: () => timedAgent(DIR, runNow(passphraseConfig, 'dump'), env) },
      { name: 'agent: dump → local, Node zlib zstd', bytes: 'dump', rss: 'agent', baseline: RAW_DUMP, run: () => timedAgent(DIR, runNow(localConfig, 'dump'), { ...env, AGENT_ZSTD: 'zlib' }) },
      ...(haveAws
        ? [{ name: RAW_AWS, bytes: 'dump' as const, rss: 'tree' as const, run: () => timedShell(`${rawDump} | ${AWS} s3 cp - s3://bench/raw/dump.sql.zst --endpoint-url ${s3.endpoint} --only-show-errors`, awsEnv) }]
        : []),
      { name: 'agent: dump → S3', bytes: 'dump', rss: 'agent', ...(haveAws ? { baseline: RAW_AWS, target: { ratio: 1.1 } } : {}), run: () => timedAgent(DIR, runNow(s3Config, 'dump'), env) },
      { name: RAW_BACKUP, bytes: 'full', rss: 'tree', run: () => timedShell(`${rawBackup(join(DIR, 'raw-lsn'))} > ${rawPhysicalFile}`) },
      { name: `${RAW_BACKUP} + fsync`, bytes: 'full', rss: 'tree', baseline: RAW_BACKUP, run: () => timedShell(`${rawBackup(join(DIR, 'raw-lsn'))} > ${rawPhysicalFile} && sync ${rawPhysicalFile}`) },
      { name: 'agent: full → local', bytes: 'full', rss: 'agent', baseline: RAW_BACKUP, target: local, run: () => timedAgent(DIR, runNow(localConfig, 'full'), env) },
      { name: 'agent: incremental → local', bytes: 'none', rss: 'agent', run: () => touchRows(server).then(() => timedAgent(DIR, runNow(localConfig, 'incremental'), env)) },
      { name: 'agent: full → S3', bytes: 'full', rss: 'agent', baseline: RAW_BACKUP, run: () => timedAgent(DIR, runNow(s3Config, 'full'), env) },
      { name: 'agent: incremental → S3', bytes: 'none', rss: 'agent', run: () => touchRows(server).then(() => timedAgent(DIR, runNow(s3Config, 'incremental'), env)) },
    ];
    // BENCH_ROWS=regex keeps only the matching rows: for quick experiments, not for the table.
    const only = process.env['BENCH_ROWS'] ? new RegExp(process.env['BENCH_ROWS']) : undefined;
    if (only) steps.splice(0, steps.length, ...steps.filter((s) => only.test(s.name)));
    const samples = new Map<string, Sample[]>(steps.map((s) => [s.name, []]));
    for (let round = 1; round <= RUNS; round++) {
      for (const step of steps) {
        const sample = await step.run();
        samples.get(step.name)?.push(sample);
        process.stderr.write(`round ${round}/${RUNS}: ${step.name} ${sample.seconds.toFixed(2)} s, RSS ${(sample.rssKiB / 1024).toFixed(0)} MiB\n`);
      }
    }
    const startup = { version: [] as Sample[], list: [] as Sample[] };
    for (let i = 0; i < STARTUP_RUNS; i++) {
      startup.version.push(await timedAgent(DIR, [...nodeFlags, main, '--version'], env, false));
      startup.list.push(await timedAgent(DIR, agent(emptyConfig, 'list'), env, false));
    }
    // Restore time of a chain: full + incrementals, into a new datadir.
    const restoreDir = join(DIR, 'restored');
    const restore = steps.some((s) => s.name === 'agent: full → local')
      ? [await timedAgent(DIR, agent(localConfig, 'restore', '--database', 'bench', '--datadir', restoreDir), env)]
      : [];
    await rm(restoreDir, { recursive: true, force: true });

    const sizeOf = (name: string) => {
      const manifests = JSON.parse(samples.get(name)?.[0]?.stdout ?? '[]') as { rawSizeBytes: number; sizeBytes: number }[];
      return manifests[0] ?? { rawSizeBytes: 0, sizeBytes: 0 };
    };
    const dumpSize = sizeOf('agent: dump → local');
    const fullSize = sizeOf('agent: full → local');
    const bytes = { dump: dumpSize.rawSizeBytes, full: fullSize.rawSizeBytes, none: 0 };
    const rows: Row[] = steps.map(({ run: _, ...step }) => ({ ...step, samples: samples.get(step.name) ?? [], bytes: bytes[step.bytes] }));
    rows.push(
      { name: 'agent --version', samples: startup.version, bytes: 0, target: { seconds: 0.15 }, rss: 'none' },
      { name: 'agent list (empty local store)', samples: startup.list, bytes: 0, target: { seconds: 0.25 }, rss: 'none' },
    );
    if (restore.length > 0) rows.push({ name: 'agent restore --datadir (full + incrementals)', samples: restore, bytes: 0, rss: 'agent' });
    const lines = [
      `backup-agent bench, ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Linux ${release()}, Node ${process.versions.node}`,
      `${SIZE_MB} MB of SQL (dump: ${(dumpSize.rawSizeBytes / 1e6).toFixed(0)} MB raw → ${(dumpSize.sizeBytes / 1e6).toFixed(0)} MB zstd; full: ${(fullSize.rawSizeBytes / 1e6).toFixed(0)} MB xbstream → ${(fullSize.sizeBytes / 1e6).toFixed(0)} MB), ${RUNS} interleaved rounds, start-up ${STARTUP_RUNS} runs; zstd level 1 everywhere; agent node flags: ${nodeFlags.join(' ') || 'none'}`,
      haveAws ? '' : `(no ${AWS}: the aws s3 cp row is missing; apt-get install awscli)`,
      ...renderTable(rows),
      '',
      'MB/s: uncompressed bytes (SQL text or xbstream) per second. CPU s: user + system seconds of the process tree (tools included, the server not); in brackets the agent\'s node process alone. Peak RSS: agent rows VmHWM of the node process alone; raw rows (tool) the largest process of the pipeline.',
      'Ratio: a row over the raw row of the same destination in this run (physical to S3 over the local raw row: there is no raw S3 physical row; the age-encrypted dumps over the unencrypted agent dump). Incrementals have no raw counterpart.',
    ];
    // The table first: the binlog part runs for minutes more and must not take it down with it.
    process.stdout.write(`${lines.join('\n')}\n`);
    if (process.env['BENCH_BINLOG'] !== '0') process.stdout.write(`${(await binlogBenches(server, [...nodeFlags, main], s3.endpoint)).join('\n')}\n`);
  } finally {
    await s3.stop();
    await server.stop();
    if (!process.env['BENCH_KEEP']) await rm(DIR, { recursive: true, force: true });
  }
}

/** Changes ~2% of one table's rows, so an incremental has pages to copy. */
async function touchRows(server: Awaited<ReturnType<typeof startSandbox>>): Promise<void> {
  await server.sql('UPDATE bench.t1 SET k = k + 1 WHERE id % 50 = 0');
}

/** The binlog part once per store: local, then S3 (s3rver). BENCH_BINLOG_STORES=local|s3 picks one. */
async function binlogBenches(server: Awaited<ReturnType<typeof startSandbox>>, agent: string[], s3Endpoint: string): Promise<string[]> {
  const wanted = (process.env['BENCH_BINLOG_STORES'] ?? 'local,s3').split(',');
  const lines: string[] = [];
  for (const kind of ['local', 's3'] as const) if (wanted.includes(kind)) lines.push(...(await binlogBench(server, agent, kind, s3Endpoint)));
  return lines;
}

/**
 * Binlog archive lag under a sysbench write load: every 250 ms the primary's binlog position is
 * sampled; a sample's lag is the time until the archive has committed a segment reaching it. Then
 * an idle minute: objects the capture uploads while nothing is written, as requests per hour. The
 * capture runs as `agent binlog capture` with the default segment settings, and starts with a
 * backlog to catch up (the whole binlog file of the run-now before it, from 0): its peak RSS
 * (VmHWM of the node process) covers the catch-up and the load. On S3 (s3rver) the archive is
 * watched in s3rver's directory.
 */
async function binlogBench(server: Awaited<ReturnType<typeof startSandbox>>, agent: string[], kind: 'local' | 's3', s3Endpoint: string): Promise<string[]> {
  if (!existsSync('/usr/bin/sysbench')) return ['binlog lag: skipped, sysbench is not installed (apt-get install sysbench; scripts/setup.sh does)'];
  const seconds = Number(process.env['BENCH_BINLOG_SECONDS'] ?? 30);
  const idleSeconds = Number(process.env['BENCH_IDLE_SECONDS'] ?? 60);
  // s3rver keeps an object as <dir>/<bucket>/<key>._S3rver_object (+ metadata files).
  const store = kind === 'local' ? join(DIR, 'binlog-store') : join(DIR, 's3', 'bench', 'binlog-bench');
  const config = join(DIR, `binlog-${kind}.yaml`);
  const storage =
    kind === 'local'
      ? ['  type: local', `  path: ${store}`]
      : ['  type: s3', '  bucket: bench', '  prefix: binlog-bench', `  endpoint: ${s3Endpoint}`, '  force_path_style: true', '  access_key_id: S3RVER', '  secret_access_key: S3RVER', '  checksum: when_required'];
  await writeFile(
    config,
    ['storage:', ...storage, 'databases:', '  - name: bench', `    socket: ${server.socket}`, '    user: root', `    binlog: { enabled: true, spool_dir: ${join(DIR, `spool-${kind}`)} }`, ''].join('\n'),
  );
  const sb = ['--db-driver=mysql', `--mysql-socket=${server.socket}`, '--mysql-user=root', '--mysql-db=sbtest', '--tables=4', '--table-size=20000'];
  await server.sql('CREATE DATABASE IF NOT EXISTS sbtest');
  await execa('sysbench', ['oltp_write_only', ...sb, 'cleanup'], { stdin: 'ignore' });
  await execa('sysbench', ['oltp_write_only', ...sb, 'prepare'], { stdin: 'ignore' });
  await execa(process.execPath, [...agent, '--config', config, 'run-now'], { stdin: 'ignore' });
  const capture = execa(process.execPath, [...agent, '--config', config, 'binlog', 'capture'], { reject: false, stdin: 'ignore' });

  /** Archived end position per binlog file, from the segment manifests' names (merged ones too). */
  const archived = async (file: string): Promise<number> => {
    const names = await readdir(join(store, 'bench', 'binlog', file)).catch(() => [] as string[]);
    return Math.max(0, ...names.flatMap((n) => /^\d{12}-(\d{12})(?:\.L[1-9]-\d{8}T\d{6}Z)?\.json(?:\._S3rver_object)?$/.exec(n)?.[1] ?? []).map(Number));
  };
  // The capture starts at the dump's binlog file from 0: let it archive that backlog first, so the
  // samples measure the steady state under load, not the catch-up.
  const [startFile, startPosition] = (await server.sql('SHOW MASTER STATUS')).split('\t');
  const backlog = Number(startPosition);
  const catchUpStart = Date.now();
  for (let i = 0; (await archived(startFile ?? '')) < Number(startPosition); i++) {
    if (i > 1200) throw new Error('binlog capture did not catch up with the backlog within 2 minutes');
    await sleep(100);
  }
  const catchUpSeconds = (Date.now() - catchUpStart) / 1000;
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
  const count = async () => (await readdir(join(store, 'bench', 'binlog'), { recursive: true })).filter((n) => /\.json(?:\._S3rver_object)?$/.test(String(n)) && !String(n).endsWith('_S3rver_metadata.json')).length;
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
    `binlog archive lag → ${kind === 'local' ? 'local' : 'S3'} under sysbench oltp_write_only (2 threads, ${seconds} s, ${tps} tps), default segments (16 MiB / 3 s), after a backlog catch-up of ${(backlog / 1048576).toFixed(0)} MiB in ${catchUpSeconds.toFixed(1)} s:`,
    `  p50 ${pct(0.5).toFixed(2)} s  p95 ${pct(0.95).toFixed(2)} s  max ${(sorted.at(-1) ?? NaN).toFixed(2)} s over ${sorted.length} samples (target p95 ≤ 5 s); capture peak RSS ${rss.toFixed(0)} MiB (target ≤ 64 MiB)`,
    `idle database: ${idleObjects} segment uploads in ${idleSeconds} s → ${((idleObjects * 2 * 3600) / idleSeconds).toFixed(0)} object-store requests per hour`,
  ];
}

await main();
