// Catalog speed (issue 11): wall time and peak RSS of `agent list --json` over a large catalog,
// cold (local manifest cache removed: a new host, which reads the store's manifest pack) and warm, on local storage and on s3rver. The catalogs are
// generated through the real drivers (test/harness/catalog-generator.ts) once and kept under
// .tmp/bench-catalog (BENCH_CATALOG_FRESH=1 regenerates); only the timing runs are measured.
//   node bench/catalog.ts            generate what is missing, then time (npm run build first)
//   node bench/catalog.ts prepare    generate only (slow on s3rver: not worth holding a bench lock)
// BENCH_CATALOG_N: backups per store (default 20000); BENCH_RUNS: repeats (default 3);
// BENCH_CATALOG_STORES=local|s3: one store only; BENCH_CATALOG_PACK=0: cold without the manifest pack. Targets: ≤ 1 s warm, ≤ 5 s cold.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret } from '../src/config/secret.ts';
import { listBackups } from '../src/catalog/listing.ts';
import { manifestPackKey } from '../src/catalog/manifest-pack.ts';
import type { StorageDriver } from '../src/storage/driver.ts';
import { LocalDriver } from '../src/storage/local.ts';
import { openStorage } from '../src/storage/open.ts';
import { generateCatalog } from '../test/harness/catalog-generator.ts';
import { createS3Bucket, startS3Server, type S3Server } from '../test/harness/s3-server.ts';
import { median, timedAgent, type Sample } from './measure.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const N = Number(process.env['BENCH_CATALOG_N'] ?? 20_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const DIR = join(ROOT, '.tmp', 'bench-catalog', String(N));
const DATABASE = 'big';
const BINLOG_FILES = 10;
const BUCKET = 'catalog';
const stores = (process.env['BENCH_CATALOG_STORES'] ?? 'local,s3').split(',');

const marker = (name: string) => join(DIR, `${name}.complete`);

async function prepareLocal(): Promise<string> {
  const root = join(DIR, 'local');
  if (existsSync(marker('local'))) return root;
  process.stderr.write(`generating ${N} backups on local storage…\n`);
  await rm(root, { recursive: true, force: true });
  await generateCatalog(new LocalDriver(root), DATABASE, N, { binlogFiles: BINLOG_FILES });
  await writeFile(marker('local'), `${new Date().toISOString()}\n`);
  return root;
}

/**
 * The manifest pack as an agent that writes to the store leaves it (the daemon's listings, run-now,
 * prune: catalog/manifest-pack.ts), so "cold" is a new host reading a store an agent keeps.
 * BENCH_CATALOG_PACK=0 removes it instead: every cold manifest is then one GET.
 */
async function preparePack(storage: StorageDriver): Promise<void> {
  if (process.env['BENCH_CATALOG_PACK'] === '0') {
    await storage.delete(manifestPackKey(DATABASE));
    return;
  }
  if (await storage.stat(manifestPackKey(DATABASE))) return;
  process.stderr.write(`writing the manifest pack in ${storage.location}…\n`);
  await listBackups(storage, DATABASE, { pack: 'refresh' });
}

function s3Storage(endpoint: string) {
  return {
    type: 's3' as const, bucket: BUCKET, prefix: '', endpoint, force_path_style: true, region: 'us-east-1',
    access_key_id: new Secret('S3RVER'), secret_access_key: new Secret('S3RVER'), checksum: 'when_required' as const,
    conditional_writes: false, delimiter_listing: true, part_size_mb: 5, upload_concurrency: 2,
  };
}

async function startS3(): Promise<S3Server> {
  return startS3Server({ dir: join(DIR, 's3'), runDir: join(DIR, 's3-run') });
}

async function prepareS3(s3: S3Server): Promise<void> {
  if (existsSync(marker('s3'))) return;
  process.stderr.write(`generating ${N} backups on s3rver (minutes)…\n`);
  await createS3Bucket(s3.endpoint, BUCKET).catch(() => undefined); // exists from an interrupted run
  const storage = await openStorage(s3Storage(s3.endpoint));
  try {
    await generateCatalog(storage, DATABASE, N, { binlogFiles: BINLOG_FILES, concurrency: 16 });
  } finally {
    await storage.close();
  }
  await writeFile(marker('s3'), `${new Date().toISOString()}\n`);
}

function config(storage: string): string {
  return ['storage:', storage, 'databases:', `  - name: ${DATABASE}`, '    host: 127.0.0.1', '    user: root', ''].join('\n');
}

async function main(): Promise<void> {
  if (process.env['BENCH_CATALOG_FRESH']) await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
  const prepareOnly = process.argv[2] === 'prepare';
  const s3 = stores.includes('s3') ? await startS3() : undefined;
  try {
    const targets: { name: string; config: string }[] = [];
    if (stores.includes('local')) {
      const root = await prepareLocal();
      await preparePack(new LocalDriver(root));
      targets.push({ name: 'local', config: config(`  type: local\n  path: ${root}`) });
    }
    if (s3) {
      await prepareS3(s3);
      const storage = await openStorage(s3Storage(s3.endpoint));
      await preparePack(storage).finally(() => storage.close());
      targets.push({
        name: 's3rver',
        config: config(`  type: s3\n  bucket: ${BUCKET}\n  endpoint: ${s3.endpoint}\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n  checksum: when_required`),
      });
    }
    if (prepareOnly) return;
    const main = join(ROOT, 'dist', 'main.js');
    const shebang = (await readFile(main, 'utf8')).split('\n')[0] ?? '';
    const nodeFlags = shebang.split(/\s+/).filter((word) => word.startsWith('--'));
    const lines = [
      `agent list --json over ${N} backups (+${BINLOG_FILES * 200} binlog keys), ${RUNS} runs, ${cpus().length} cores; median [min–max] wall s; the agent process's own CPU s (user + system: steadier than wall time on a busy machine, and apart from s3rver's) and peak RSS MiB`,
      '| store | cold s | warm s | cold agent CPU s | warm agent CPU s | cold RSS | warm RSS |',
      '|---|---|---|---|---|---|---|',
    ];
    for (const target of targets) {
      const file = join(DIR, `${target.name}.yaml`);
      await writeFile(file, target.config);
      const cacheHome = join(DIR, `cache-${target.name}`);
      const env = { PATH: process.env['PATH'] ?? '', HOME: DIR, XDG_CACHE_HOME: cacheHome };
      const run = async () => {
        const sample = await timedAgent(DIR, [...nodeFlags, main, '--config', file, 'list', '--json'], env);
        const count = (JSON.parse(sample.stdout) as unknown[]).length;
        if (count !== N) throw new Error(`${target.name}: list --json showed ${count} backups, not ${N}`);
        return sample;
      };
      const cold: Sample[] = [];
      const warm: Sample[] = [];
      for (let i = 0; i < RUNS; i++) {
        await rm(cacheHome, { recursive: true, force: true });
        cold.push(await run());
        warm.push(await run());
        process.stderr.write(`${target.name} run ${i + 1}: cold ${cold.at(-1)?.seconds.toFixed(2)} s, warm ${warm.at(-1)?.seconds.toFixed(2)} s\n`);
      }
      const s = (xs: Sample[]) => {
        const secs = xs.map((x) => x.seconds);
        return `${median(secs).toFixed(2)} [${Math.min(...secs).toFixed(2)}–${Math.max(...secs).toFixed(2)}]`;
      };
      const rss = (xs: Sample[]) => (median(xs.map((x) => x.rssKiB)) / 1024).toFixed(0);
      const cpu = (xs: Sample[]) => median(xs.map((x) => x.agentCpuSeconds ?? NaN)).toFixed(2);
      lines.push(`| ${target.name} | ${s(cold)} | ${s(warm)} | ${cpu(cold)} | ${cpu(warm)} | ${rss(cold)} | ${rss(warm)} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await s3?.stop();
  }
}

await main();
