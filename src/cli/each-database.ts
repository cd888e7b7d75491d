import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';

export interface DatabaseFailure {
  name: string;
  error: unknown;
}

/**
 * Runs `work` for each database in turn: a failing database is reported at once (`error: NAME: …`
 * and its `hint:`) and the others still run. Stops early only when `signal` is aborted; the
 * databases not started then are failures too, each named, so a cancelled run never looks like
 * it covered them.
 */
export async function forEachDatabase(
  databases: readonly DatabaseConfig[],
  signal: AbortSignal,
  work: (database: DatabaseConfig) => Promise<void>,
): Promise<DatabaseFailure[]> {
  const failed: DatabaseFailure[] = [];
  const fail = (name: string, error: unknown) => {
    failed.push({ name, error });
    process.stderr.write(`error: ${name}: ${messageOf(error)}\n`);
    if (error instanceof AgentError && error.hint) process.stderr.write(`hint: ${error.hint}\n`);
  };
  for (const database of databases) {
    if (signal.aborted) {
      fail(database.name, new AgentError('internal', `not started: ${messageOf(signal.reason)}`));
      continue;
    }
    try {
      await work(database);
    } catch (error) {
      fail(database.name, error);
    }
  }
  return failed;
}

/**
 * The error that sets the exit code once per-database failures were printed: of the kind they all
 * share (so all-locked exits 3), else internal. `reported` suppresses the summary line.
 */
export function failuresError(failed: readonly DatabaseFailure[], message: string, options: { reported: boolean }): AgentError {
  const kinds = new Set(failed.map((f) => (f.error instanceof AgentError ? f.error.kind : 'internal')));
  const [only] = kinds;
  return new AgentError(kinds.size === 1 && only ? only : 'internal', message, { cause: failed[0]?.error, reported: options.reported });
}
