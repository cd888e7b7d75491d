import type { Readable } from 'node:stream';
import { startTool, ToolError, type ToolProcess } from '../capture/tool-process.ts';
import { zstdEngine } from './compress.ts';

/**
 * The zero-copy path of a backup stream: the tool's stdout is zstd's stdin, one kernel pipe
 * between the two children, so the uncompressed stream (the larger side: ~2.5× an xbstream's
 * compressed size) never passes through the agent, which reads only zstd's output. The agent
 * then cannot count the raw bytes itself: `zstd -vv` reports both totals exactly when it ends,
 * `(1393412345 B => 543123456 B, /*stdout*\)`, and the compressed total is checked against the
 * bytes the agent read. Used when nothing needs to read the raw stream (no inspection stage: a
 * physical backup) and the installed zstd reports its totals in that form (probed once).
 */

/** Pure: the exact raw and compressed byte counts `zstd -vv` prints at its end; undefined when absent. */
export function parseZstdTotals(stderr: string): { raw: number; compressed: number } | undefined {
  const matches = [...stderr.matchAll(/\(\s*(\d+) B =>\s*(\d+) B, /g)];
  const last = matches.at(-1);
  if (!last) return undefined;
  return { raw: Number(last[1]), compressed: Number(last[2]) };
}

/** The zstd command line of the piped path: stdin → stdout, totals on stderr, no progress lines. */
export function pipedZstdArgs(level: number, threads: number): string[] {
  return ['-vv', '--no-progress', '-c', `-${level}`, `-T${threads}`, '--check', '-'];
}

let probed: Promise<{ path: string; threads: number } | undefined> | undefined;

/**
 * The zstd command for the piped path, or undefined when it cannot be used: Node's zlib is the
 * engine (AGENT_ZSTD=zlib, no CLI), or this zstd does not report its totals as parsed above
 * (checked once per process on 5 bytes), or AGENT_ZSTD_PIPE=0.
 */
export function pipedZstd(): Promise<{ path: string; threads: number } | undefined> {
  probed ??= (async () => {
    if (process.env['AGENT_ZSTD_PIPE'] === '0') return undefined;
    const engine = await zstdEngine();
    if (engine.kind !== 'cli') return undefined;
    try {
      const probe = startTool(engine.path, pipedZstdArgs(1, 1), { stdin: 'pipe', name: 'zstd' });
      probe.stdout.resume();
      probe.stdin.end(Buffer.from('probe'));
      await probe.done;
      return parseZstdTotals(probe.stderrTail())?.raw === 5 ? { path: engine.path, threads: engine.threads } : undefined;
    } catch {
      return undefined;
    }
  })();
  return probed;
}

export interface PipedCompression {
  /** The producing tool (its stdout is zstd's stdin). */
  tool: ToolProcess;
  zstd: ToolProcess;
  /** zstd's output: the compressed stream. */
  output: Readable;
  /**
   * Resolves once both exited 0: zstd first (it ends when the tool's output does), then the tool,
   * so a failed zstd is the error (the tool then only dies of the broken pipe), and a tool that
   * failed after zstd read its truncated output is too.
   */
  done: Promise<void>;
  /** The totals zstd reported; call after `done`. Throws when it reported none. */
  totals(): { raw: number; compressed: number };
}

/**
 * A failed zstd's error without the -vv report lines (its banner, "Using stdout…", the totals), so
 * the first line of the message, which status and webhooks show, is zstd's own complaint.
 */
export function withoutReport(err: unknown): unknown {
  if (!(err instanceof ToolError)) return err;
  const lines = err.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const complaints = lines.filter((l) => /^zstd:|error/i.test(l));
  const stderr = complaints.length > 0 ? complaints.join('\n') : (lines.at(-1) ?? '');
  return new ToolError(err.tool, err.exitCode, err.signal, stderr, err.cause);
}

/** Starts `file args | zstd` with the pipe between the two children; `signal` kills both. */
export function startPipedCompression(file: string, args: readonly string[], zstd: { path: string; threads: number; level: number }, signal: AbortSignal): PipedCompression {
  const tool = startTool(file, args, { signal });
  let compressor: ToolProcess;
  try {
    // In the same tick as the tool's start, before anything reads the tool's stdout: zstd gets
    // that pipe's read end as its stdin.
    compressor = startTool(zstd.path, pipedZstdArgs(zstd.level, zstd.threads), { stdin: tool.stdout, signal, name: 'zstd' });
  } finally {
    // The agent's own copy of the read end, closed (never shut down: the socket is shared with zstd).
    tool.stdout.destroy();
  }
  const done = compressor.done.catch((err: unknown) => {
    throw withoutReport(err);
  }).then(() => tool.done);
  done.catch(() => undefined);
  return {
    tool,
    zstd: compressor,
    output: compressor.stdout,
    done,
    totals: () => {
      const totals = parseZstdTotals(compressor.stderrTail());
      if (!totals) throw new Error(`zstd reported no byte totals on stderr: ${compressor.stderrTail().trim().split('\n').at(-1) ?? ''}`);
      return totals;
    },
  };
}
