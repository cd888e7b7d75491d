import { PassThrough, type Duplex, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { onPath } from '../capture/tools.ts';
import type { Compression } from '../config/normalize.ts';
import { BLOCK_SIZE } from './rechunk.ts';
import { createZstdCliCompressor } from './zstd-cli.ts';

/**
 * Compression stages. zstd uses Node 24's built-in zlib binding (no native addon), with the frame
 * checksum on so `zstd -t` and `zstd -d` verify archives; gzip is plain gzip. Both produce files
 * the stock `zstd` and `gzip` tools read.
 */

export type Algorithm = Compression['algorithm'];

/** Output block size of the (de)compressors: larger blocks mean fewer thread-pool round trips. */
const CHUNK = 256 * 1024;
/** zlib passes its options on to Transform; its types do not say so. */
const STAGE_BUFFER: object = { highWaterMark: BLOCK_SIZE };

export function createCompressor(compression: Compression): Transform {
  switch (compression.algorithm) {
    case 'zstd':
      return zlib.createZstdCompress({
        chunkSize: CHUNK,
        ...STAGE_BUFFER,
        params: {
          [zlib.constants.ZSTD_c_compressionLevel]: compression.level,
          [zlib.constants.ZSTD_c_checksumFlag]: 1,
        },
      });
    case 'gzip':
      return zlib.createGzip({ level: compression.level, chunkSize: CHUNK, ...STAGE_BUFFER });
    case 'none':
      return new PassThrough({ highWaterMark: BLOCK_SIZE });
  }
}

/**
 * Who compresses zstd for a backup stream. The zstd CLI when it is installed: on a 2-core machine
 * it beats Node's zlib binding (npm run bench measures both: AGENT_ZSTD=zlib), runs off the
 * agent's main thread, and overlaps reading and compressing with its worker threads. Node's zlib
 * otherwise, so the agent needs no zstd package. AGENT_ZSTD=cli|zlib forces one (cli without
 * the CLI installed is an error, not a silent fallback); AGENT_ZSTD_THREADS sets -T (default 2).
 */
export type ZstdEngine = { kind: 'cli'; path: string; threads: number } | { kind: 'zlib' };

/** Reads the choice from `env` and looks for the CLI on its PATH. */
export async function chooseZstdEngine(env: NodeJS.ProcessEnv): Promise<ZstdEngine> {
  const wanted = env['AGENT_ZSTD'] ?? 'auto';
  if (!['auto', 'cli', 'zlib'].includes(wanted)) throw new Error(`choose zstd engine: AGENT_ZSTD=${wanted} is not auto, cli or zlib`);
  const threads = Number(env['AGENT_ZSTD_THREADS'] ?? 2);
  if (!Number.isInteger(threads) || threads < 0 || threads > 64) throw new Error(`choose zstd engine: AGENT_ZSTD_THREADS=${env['AGENT_ZSTD_THREADS']} is not 0–64`);
  if (wanted === 'zlib') return { kind: 'zlib' };
  const path = await onPath('zstd', env['PATH'] ?? '');
  if (path) return { kind: 'cli', path, threads };
  if (wanted === 'cli') throw new Error('choose zstd engine: AGENT_ZSTD=cli, but there is no zstd on PATH (apt-get install zstd)');
  return { kind: 'zlib' };
}

let engine: Promise<ZstdEngine> | undefined;

/** The agent's choice, made once per process. */
export function zstdEngine(): Promise<ZstdEngine> {
  engine ??= chooseZstdEngine(process.env);
  return engine;
}

/** A compression stage for a backup stream, and a description of what compresses (for logs). */
export async function openCompressor(compression: Compression, signal?: AbortSignal): Promise<{ stage: Duplex; engine: string }> {
  if (compression.algorithm !== 'zstd') return { stage: createCompressor(compression), engine: compression.algorithm === 'gzip' ? 'node zlib gzip' : 'none' };
  const chosen = await zstdEngine();
  if (chosen.kind === 'zlib') return { stage: createCompressor(compression), engine: 'node zlib zstd' };
  return { stage: createZstdCliCompressor(chosen.path, compression.level, chosen.threads, signal), engine: `zstd cli -T${chosen.threads} (${chosen.path})` };
}

export function createDecompressor(algorithm: Algorithm): Transform {
  switch (algorithm) {
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize: CHUNK });
    case 'gzip':
      return zlib.createGunzip({ chunkSize: CHUNK });
    case 'none':
      return new PassThrough();
  }
}

/** File-name extension of a compressed stream, with the dot: ".zst", ".gz" or "". */
export function compressionExtension(algorithm: Algorithm): string {
  return algorithm === 'zstd' ? '.zst' : algorithm === 'gzip' ? '.gz' : '';
}
