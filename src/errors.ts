/**
 * Errors the agent reports to a person. Every failure that reaches `main` is an AgentError
 * (or is wrapped into one there), and `main` is the only place that maps them to exit codes.
 */

/** Exit codes, documented in README: 0 ok, 1 the work failed, 2 usage or configuration, 3 locked. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  /** Another process holds the lock (e.g. a prune of the same database is running). */
  locked: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorKind =
  | 'usage' // bad flags or arguments
  | 'config' // the configuration file is invalid
  | 'not-found' // a backup, database entry or object does not exist
  | 'refused' // the agent refuses to act (e.g. restoring into a non-empty schema)
  | 'tool' // a child tool (mariadb-dump, mariadb, …) failed
  | 'storage' // the storage backend failed
  | 'database' // the database server failed or refused
  | 'integrity' // data does not match its manifest
  | 'locked' // another process holds the lock
  | 'internal';

export interface AgentErrorOptions {
  hint?: string;
  cause?: unknown;
  /** The details were already printed where they happened; main only sets the exit code. */
  reported?: boolean;
}

export class AgentError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly reported: boolean;

  constructor(kind: ErrorKind, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.kind = kind;
    this.hint = options.hint;
    this.reported = options.reported ?? false;
  }

  get exitCode(): ExitCode {
    if (this.kind === 'usage' || this.kind === 'config') return ExitCode.usage;
    return this.kind === 'locked' ? ExitCode.locked : ExitCode.failure;
  }
}

export const usageError = (message: string, hint?: string): AgentError =>
  new AgentError('usage', message, hint === undefined ? {} : { hint });

/** The message of any thrown value, for wrapping at a layer boundary. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
