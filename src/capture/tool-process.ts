import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { execa, type ResultPromise } from 'execa';
import { trackTool, untrackTool } from './running-tools.ts';

export { killTools } from './running-tools.ts';

/**
 * The one child-process wrapper. No shell; arguments never carry secrets (they go through a 0600
 * defaults file); the environment is a minimal one (toolEnvironment); stdout streams, never
 * buffers; the last 64 KiB of stderr is kept for the error; an AbortSignal cancels (SIGTERM,
 * SIGKILL after 5 s).
 */

const STDERR_TAIL_BYTES = 64 * 1024;

/**
 * What a tool gets from the agent's environment: where programs, home and temp files are, the
 * locale and the time zone (mariadb-binlog reads --stop-datetime in local time). Nothing else: the
 * agent's environment holds database passwords, cloud credentials (AWS_*, GOOGLE_*) and AGENT_*
 * settings, and MYSQL_PWD / MYSQL_HOST / MYSQL_TCP_PORT would silently change what a MariaDB tool
 * connects to. A tool that needs more is configured as a wrapper script that sets it.
 */
const PASSED_VARIABLES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'];

export function toolEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (PASSED_VARIABLES.includes(name) || name.startsWith('LC_'))) picked[name] = value;
  }
  return picked;
}

export class ToolError extends Error {
  readonly tool: string;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stderr: string;

  constructor(tool: string, exitCode: number | undefined, signal: string | undefined, stderr: string, cause?: unknown) {
    const how = signal ? `was killed by ${signal}` : exitCode === undefined ? 'failed to start' : `exited with code ${exitCode}`;
    const detail = stderr.trim();
    super(`${tool} ${how}${detail ? `: ${detail}` : ''}`, cause === undefined ? undefined : { cause });
    this.name = 'ToolError';
    this.tool = tool;
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

export interface ToolProcess {
  /** The tool's stdout, when started with stdout 'pipe'. */
  stdout: Readable;
  /** The tool's stdin, when started with stdin 'pipe'. */
  stdin: Writable;
  /** Resolves when the tool exits 0; rejects with ToolError otherwise (also when cancelled). */
  done: Promise<void>;
  pid: number | undefined;
  /** The last 64 KiB of the tool's stderr so far (the whole tail once `done` settles). */
  stderrTail(): string;
}

export interface ToolOptions {
  signal?: AbortSignal;
  /**
   * 'pipe' (the agent writes it), 'ignore', or another tool's `stdout` (the read end of its pipe):
   * the file descriptor is handed to this tool, so that tool's output goes straight into this one,
   * never through the agent. The caller then destroys its own copy (execa takes the destroy of an
   * output stream as an abort, not a failure) before anything reads it.
   */
  stdin?: 'pipe' | 'ignore' | Readable;
  stdout?: 'pipe' | 'ignore';
  env?: Record<string, string>;
  cwd?: string;
  /** The name errors give the tool (default: the program's basename): a role, e.g. `age` for whatever tools.age names. */
  name?: string;
}

/** Name shown in errors: the program's basename, never its arguments. */
function toolName(file: string): string {
  return file.split('/').pop() ?? file;
}

/**
 * util-linux's setpriv, when present: tools are started through `setpriv --pdeathsig KILL`, which
 * sets the kernel's parent-death signal and then execs the tool (same pid). A tool then never
 * outlives an agent that was killed with SIGKILL: mariadb-binlog --stop-never, which writes to
 * files and would otherwise stay connected forever, and the SQL client of a restore, which would
 * otherwise go on with the statements it had already read.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/** The command line that starts `file` so that it dies with the agent (through setpriv, when present). */
export function diesWithAgent(file: string, args: readonly string[]): [string, readonly string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args];
}

export function startTool(file: string, args: readonly string[], options: ToolOptions = {}): ToolProcess {
  const name = options.name ?? toolName(file);
  const [command, argv] = diesWithAgent(file, args);
  const child: ResultPromise = execa(command, argv, {
    stdin: options.stdin ?? 'ignore',
    stdout: options.stdout ?? 'pipe',
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    forceKillAfterDelay: 5000,
    extendEnv: false,
    env: { ...toolEnvironment(process.env), ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const pid = child.pid;
  if (pid !== undefined) trackTool(pid);

  let tail = Buffer.alloc(0);
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > STDERR_TAIL_BYTES) tail = tail.subarray(tail.length - STDERR_TAIL_BYTES);
  });

  const done = child.then((result) => {
    if (pid !== undefined) untrackTool(pid);
    const stderr = tail.toString('utf8');
    if (result.failed) {
      // A tool that exited on its own before a late cancel keeps its own exit code: execa marks
      // such a run "canceled" too, but it was not killed.
      const exitCode = result.exitCode;
      const signal = result.signal ?? (result.isCanceled && exitCode === undefined ? 'SIGTERM' : undefined);
      const cause = result.cause;
      const noStart = exitCode === undefined && signal === undefined;
      const message = noStart && cause instanceof Error ? `${stderr}${cause.message}` : stderr;
      throw new ToolError(name, exitCode, signal, message, cause);
    }
  });
  // The caller always observes `done`; this keeps an early failure from being reported unhandled
  // before the caller gets to await it.
  done.catch(() => undefined);

  return {
    stdout: child.stdout as Readable,
    stdin: child.stdin as Writable,
    done,
    pid: child.pid,
    stderrTail: () => tail.toString('utf8'),
  };
}

/**
 * Runs a short command to completion and returns its stdout, or its stderr when stdout is empty
 * (mariadb-backup prints `--version` there). For `--version` and similar.
 */
export async function runTool(file: string, args: readonly string[], options: { signal?: AbortSignal } = {}): Promise<string> {
  const child = execa(file, args, {
    stdin: 'ignore',
    reject: false,
    timeout: 30_000,
    extendEnv: false,
    env: toolEnvironment(process.env),
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  const result = await child;
  if (result.failed) {
    throw new ToolError(toolName(file), result.exitCode, result.signal, String(result.stderr || (result.cause instanceof Error ? result.cause.message : '')));
  }
  return String(result.stdout) || String(result.stderr);
}

/**
 * Whether a write to a tool's stdin failed because the tool closed it (EPIPE, or the stream torn
 * down under the write): the echo of the tool's own exit, whose error says why.
 */
export function isClosedPipe(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED';
}

/**
 * Whether a tool failed only because what it wrote to was closed: SIGPIPE, or the write error
 * (EPIPE; ECONNRESET, as the pipes between children are socket pairs).
 */
export function diedOfBrokenPipe(err: unknown): boolean {
  return err instanceof ToolError && (err.signal === 'SIGPIPE' || /broken pipe|connection reset by peer/i.test(err.stderr));
}
