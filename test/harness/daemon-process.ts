// One way to run the real daemon in a test: `agent --config FILE daemon` (the built dist/main.js)
// as a child process, its JSON log collected as it comes, waited on by message. Used by every
// test that starts a daemon (daemon.test.ts, api.test.ts, api-tls.test.ts).
import { execa, type Result, type ResultPromise } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT } from '../helpers.ts';

export interface DaemonProcess {
  child: ResultPromise;
  /** The JSON lines of its log (stdout), parsed, in order. */
  logs: Record<string, unknown>[];
  /** Everything it wrote, stdout and stderr, as text. */
  output(): string;
  /** The log lines with `msg`, once there are `count` of them; throws with the log after `timeoutMs`. */
  waitFor(msg: string, count?: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<Result>;
}

export interface DaemonStart {
  /** The environment beside the test runner's (credentials the config interpolates, STATE_DIRECTORY…). */
  env?: Record<string, string>;
  /** Also copy its stderr to the test's stderr (a crash shows in the test output). */
  forwardStderr?: boolean;
  /** How long to wait for "daemon started". */
  timeoutMs?: number;
}

/** Starts the daemon on `config` and resolves once it logged "daemon started" (it listens then). */
export async function startDaemon(config: string, options: DaemonStart = {}): Promise<DaemonProcess> {
  const child = execa(process.execPath, [AGENT, '--config', config, 'daemon'], { env: options.env ?? {}, reject: false, stdin: 'ignore', buffer: false });
  const logs: Record<string, unknown>[] = [];
  let exited: number | string | undefined;
  void child.then((r) => (exited = r.exitCode ?? r.signal ?? 'ended'));
  let text = '';
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    // Log lines are JSON objects; anything else (a crash trace) is kept in output() only.
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    if (options.forwardStderr) process.stderr.write(chunk);
  });
  const waitFor = async (msg: string, count = 1, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = logs.filter((l) => l['msg'] === msg);
      if (found.length >= count) return found;
      if (Date.now() > deadline || exited !== undefined) {
        throw new Error(`no ${count}× "${msg}" in the daemon log${exited === undefined ? ` after ${timeoutMs} ms` : ` (it exited: ${exited})`}:\n${text}`);
      }
      await sleep(50);
    }
  };
  const daemon: DaemonProcess = {
    child,
    logs,
    output: () => text,
    waitFor,
    stop: async (signal = 'SIGTERM') => {
      child.kill(signal);
      return child;
    },
  };
  try {
    await waitFor('daemon started', 1, options.timeoutMs ?? 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    await child;
    throw err;
  }
  return daemon;
}

/**
 * Writes each role's token to `<dir>/<role>.token` (0600, as an operator would) and returns the
 * `api:` block's `tokens:` lines naming them `<role>-bot`, for a test daemon's configuration.
 */
export async function apiTokenLines(dir: string, tokens: Readonly<Record<string, string>>): Promise<string[]> {
  const lines = ['  tokens:'];
  for (const [role, token] of Object.entries(tokens)) {
    const file = join(dir, `${role}.token`);
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    lines.push(`    - name: ${role}-bot`, `      role: ${role}`, `      token_file: ${file}`);
  }
  return lines;
}
