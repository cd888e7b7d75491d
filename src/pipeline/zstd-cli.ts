import { Duplex, finished, pipeline, Writable } from 'node:stream';
import { startTool } from '../capture/tool-process.ts';
import { ExitGate } from './exit-gate.ts';

/**
 * zstd compression by the zstd CLI as a child process: the compression runs on other cores (its
 * own worker threads with -T), not on the agent's main thread or libuv pool, and it is the same
 * code as the raw `… | zstd -1` pipeline it is compared with. The output is an ordinary .zst
 * frame with its content checksum, which the stock `zstd -d` reads. Started through the one
 * child-process wrapper; the stage ends only once zstd exited 0.
 */

/** The zstd command line: stdin → stdout, quiet, content checksum on, `threads` worker threads. */
export function zstdCliArgs(level: number, threads: number): string[] {
  return ['-q', '-c', `-${level}`, `-T${threads}`, '--check', '-'];
}

/**
 * A duplex stage: what is written goes to zstd's stdin, what zstd writes comes out. An error on
 * either side (or `signal`) kills zstd; zstd failing (exit ≠ 0) errors the stage with its stderr.
 */
export function createZstdCliCompressor(path: string, level: number, threads: number, signal?: AbortSignal): Duplex {
  const cancel = new AbortController();
  const abort = (reason: unknown) => {
    if (!cancel.signal.aborted) cancel.abort(reason);
  };
  const onOuterAbort = () => abort(signal?.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  const tool = startTool(path, zstdCliArgs(level, threads), { stdin: 'pipe', signal: cancel.signal });
  const output = new ExitGate(tool.done);
  // Errors of zstd's stdout reach `output` through pipeline, which destroys it with them.
  pipeline(tool.stdout, output, () => undefined);
  // A zstd that fails stops reading: writing to it then fails with EPIPE, which says nothing.
  // So a failed write waits for zstd's exit and reports that (exit code and stderr) instead.
  const explain = (err: Error, callback: (err: Error) => void) => {
    tool.done.then(
      () => callback(err),
      (toolError: unknown) => callback(toolError instanceof Error ? toolError : err),
    );
  };
  tool.stdin.on('error', () => undefined); // reported through the write and end callbacks
  // highWaterMark 0: Duplex.from calls a write back as soon as `input.write()` returns true, while
  // the chunk may still wait in `input`'s buffer. With no buffer it waits for 'drain', so a write's
  // callback means zstd's stdin has taken the chunk, and a caller may reuse its buffer (the binlog
  // segment upload reads the spool through one).
  const input = new Writable({
    highWaterMark: 0,
    write(chunk: Buffer, _encoding, callback) {
      tool.stdin.write(chunk, (err) => (err ? explain(err, callback) : callback()));
    },
    final(callback) {
      tool.stdin.end((err?: Error | null) => (err ? explain(err, callback) : callback()));
    },
    destroy(err, callback) {
      tool.stdin.destroy();
      callback(err);
    },
  });
  const stage = Duplex.from({ writable: input, readable: output });
  finished(stage, (err) => {
    signal?.removeEventListener('abort', onOuterAbort);
    // A stage torn down early (the chain failed elsewhere) must not leave zstd running.
    if (err) abort(err);
  });
  return stage;
}
