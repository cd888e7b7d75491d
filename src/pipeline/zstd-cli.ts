import type { Duplex } from 'node:stream';
import { createToolStage } from './tool-stage.ts';

/**
 * zstd compression by the zstd CLI as a child process: the compression runs on other cores (its
 * own worker threads with -T), and it is the same code as the raw `… | zstd -1` pipeline it is
 * compared with. The output is an ordinary .zst frame with its content checksum, which the stock
 * `zstd -d` reads. The stage ends only once zstd exited 0 (tool-stage.ts).
 */

/** The zstd command line: stdin → stdout, quiet, content checksum on, `threads` worker threads. */
export function zstdCliArgs(level: number, threads: number): string[] {
  return ['-q', '-c', `-${level}`, `-T${threads}`, '--check', '-'];
}

/** A duplex stage: what is written goes to zstd's stdin, what zstd writes comes out. */
export function createZstdCliCompressor(path: string, level: number, threads: number, signal?: AbortSignal): Duplex {
  return createToolStage(path, zstdCliArgs(level, threads), signal);
}
