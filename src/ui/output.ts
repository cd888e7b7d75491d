/**
 * The end of the process's own output. stdout on a pipe is asynchronous in Node: what the reader
 * has not taken yet (anything past the pipe's 64 KiB buffer) sits in the stream's queue, and
 * process.exit drops it. So main waits for both streams to flush before exiting, and a write that
 * failed is an error, except EPIPE: the reader went away on purpose (`agent list | head`), and the
 * rest of the output has no one to go to.
 */

type Stream = NodeJS.WriteStream;

const failures = new Map<Stream, NodeJS.ErrnoException>();

function watch(stream: Stream): void {
  // Without a listener, a failed write (EPIPE, ENOSPC) would crash the agent with a stack trace.
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (!failures.has(stream)) failures.set(stream, err);
  });
}

/** Call first: from here on a failed write to stdout or stderr is recorded, not thrown. */
export function watchOutput(): void {
  watch(process.stdout);
  watch(process.stderr);
}

/** Resolves once everything written to `stream` so far is handed to the OS (or the stream failed). */
function flushed(stream: Stream): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  // Writes complete in order: the callback of an empty write runs after every earlier write.
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** A write error that lost output, other than the reader closing the pipe. */
function lostOutput(stream: Stream): NodeJS.ErrnoException | undefined {
  const err = failures.get(stream);
  return err && err.code !== 'EPIPE' ? err : undefined;
}

/**
 * Flushes stdout and stderr and returns the exit code to exit with: `code`, or 1 when the output
 * could not be written (a full disk behind `> file`), which is then said on stderr.
 */
export async function finishOutput(code: number): Promise<number> {
  await flushed(process.stdout);
  const lost = lostOutput(process.stdout);
  if (lost) process.stderr.write(`error: write output: ${lost.code ?? lost.message}\n`);
  await flushed(process.stderr);
  return lost && code === 0 ? 1 : code;
}
