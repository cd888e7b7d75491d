import { Duplex, finished, pipeline, Writable } from 'node:stream';
import { startTool } from '../capture/tool-process.ts';
import { ExitGate } from './exit-gate.ts';

/**
 * A byte→byte stage run by a child process (the zstd CLI, the age CLI): what is written goes to
 * the tool's stdin, what it writes comes out. The work runs on other cores, not on the agent's
 * main thread or libuv pool. Started through the one child-process wrapper (no shell, minimal
 * environment, stderr kept); the stage ends only once the tool exited 0, and an error on either
 * side (or `signal`) kills the tool. A tool that fails errors the stage with its exit and stderr,
 * as a ToolError named `name` (default: the program's basename).
 */
export function createToolStage(path: string, args: readonly string[], signal?: AbortSignal, name?: string): Duplex {
  const cancel = new AbortController();
  const abort = (reason: unknown) => {
    if (!cancel.signal.aborted) cancel.abort(reason);
  };
  const onOuterAbort = () => abort(signal?.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  const tool = startTool(path, args, { stdin: 'pipe', signal: cancel.signal, ...(name ? { name } : {}) });
  const output = new ExitGate(tool.done);
  // Errors of the tool's stdout reach `output` through pipeline, which destroys it with them.
  pipeline(tool.stdout, output, () => undefined);
  // A tool that fails stops reading: writing to it then fails with EPIPE, which says nothing.
  // So a failed write waits for the tool's exit and reports that (exit code and stderr) instead.
  const explain = (err: Error, callback: (err: Error) => void) => {
    tool.done.then(
      () => callback(err),
      (toolError: unknown) => callback(toolError instanceof Error ? toolError : err),
    );
  };
  tool.stdin.on('error', () => undefined); // reported through the write and end callbacks
  // highWaterMark 0: Duplex.from calls a write back as soon as `input.write()` returns true, while
  // the chunk may still wait in `input`'s buffer. With no buffer it waits for 'drain', so a write's
  // callback means the tool's stdin has taken the chunk, and a caller may reuse its buffer (the
  // binlog segment upload reads the spool through one).
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
    // A stage torn down early (the chain failed elsewhere) must not leave the tool running.
    if (err) abort(err);
  });
  return stage;
}
