import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { startTool } from '../capture/tool-process.ts';
import type { ToolInfo } from '../capture/tools.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { purgedOnServer, reconnectBackoff, RECONNECT_FIRST_MS } from './capture-decisions.ts';
import { checkedBinlogName, oldestBinlog, type ResumePoint } from './resume.ts';
import type { Spool } from './spool.ts';

/** A running `mariadb-binlog --stop-never`, as the tail sees it. */
export interface RunningTool {
  /** Set once the tool has exited: with its error unless it exited 0. */
  readonly exited: { error?: unknown } | undefined;
  /** Resolves when the tool has exited (however). */
  readonly gone: Promise<void>;
}

export interface SupervisionOptions {
  database: DatabaseConfig;
  tool: ToolInfo;
  spool: Spool;
  serverId: number;
  signal: AbortSignal;
  log: Logger;
  /** Where the next start fetches from: the archive's end as the last attempt left it. */
  resumePoint: () => ResumePoint;
  /** Moves the resume point: its name checked at each start, or to the oldest file the server has after a purge (a gap, logged). */
  setResumePoint: (resume: ResumePoint) => void;
  /**
   * Tails the spool while `tool` runs; resolves once the tool has exited and all it wrote is
   * archived, with whether it archived anything. Rejecting stops the tool and the supervision.
   */
  follow: (tool: RunningTool, resume: ResumePoint) => Promise<boolean>;
  /** After every start of the tool, once it is gone. */
  onStopped: () => void;
}

/**
 * Runs mariadb-binlog until the signal aborts: each start empties the spool and fetches the resume
 * point's file whole; when the tool exits (server restart, network), it is started again after a
 * backoff (1 s doubling to 30 s, back to 1 s after an attempt that archived something). A resume
 * file the server has purged is a gap: logged, and the capture goes on at the oldest file it has.
 */
export async function superviseBinlogTool(options: SupervisionOptions): Promise<void> {
  const { database, tool, spool, signal, log } = options;
  let backoffMs = RECONNECT_FIRST_MS;
  while (!signal.aborted) {
    const resume = { ...options.resumePoint(), file: checkedBinlogName(database.name, options.resumePoint().file, 'the resume point') };
    options.setResumePoint(resume);
    await spool.clear();
    log.info({ file: resume.file, position: resume.offset, spool: spool.dir, tool: tool.versionLine }, 'binlog capture started');
    const outcome = await withDefaultsFile(database.connection, tool.flavor, (defaultsFile) =>
      runOnce(options, resume, [
        `--defaults-file=${defaultsFile}`,
        '--read-from-remote-server',
        '--raw',
        '--stop-never',
        `--stop-never-slave-server-id=${options.serverId}`,
        `--result-file=${spool.dir}/`,
        resume.file,
      ]),
    );
    options.onStopped();
    if (signal.aborted) break;
    const { waitMs, nextMs } = reconnectBackoff(backoffMs, outcome.archivedSomething);
    backoffMs = waitMs;
    const toolError = outcome.exited?.error instanceof Error ? messageOf(outcome.exited.error) : '';
    const from = options.resumePoint();
    if (purgedOnServer(toolError)) {
      const oldest = await oldestBinlog(database);
      log.error({ file: from.file, oldest }, `binlog ${from.file} is no longer on the server (purged before it was captured): the archive has a gap; capture continues at ${oldest}`);
      options.setResumePoint({ file: oldest, offset: 0, follows: null });
      continue;
    }
    log.warn({ error: toolError || (outcome.exited?.error ? messageOf(outcome.exited.error) : 'the tool exited'), retryInMs: waitMs, file: from.file, position: from.offset }, 'binlog capture interrupted; reconnecting');
    await sleep(waitMs, undefined, { signal }).catch(() => undefined);
    backoffMs = nextMs;
  }
}

/** One start of the tool, followed until it is gone and its output archived; the tool never outlives it. */
async function runOnce(options: SupervisionOptions, resume: ResumePoint, args: string[]): Promise<{ exited: { error?: unknown } | undefined; archivedSomething: boolean }> {
  const { signal } = options;
  // Stopped with the capture, and whenever this attempt ends (also by an error of the tail).
  const stopTool = new AbortController();
  const onAbort = () => stopTool.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const child = startTool(options.tool.path, args, { stdout: 'ignore', signal: stopTool.signal });
  let exited: { error?: unknown } | undefined;
  child.done.then(
    () => (exited = {}),
    (error: unknown) => (exited = { error }),
  );
  const running: RunningTool = {
    get exited() {
      return exited;
    },
    gone: child.done.catch(() => undefined),
  };
  try {
    const archivedSomething = await options.follow(running, resume);
    return { exited, archivedSomething };
  } finally {
    signal.removeEventListener('abort', onAbort);
    stopTool.abort();
    await child.done.catch(() => undefined);
  }
}
