// Shared types of `agent verify` (issue 15).
import type { VerifyDepth } from '../domain/verify.ts';
export { VERIFY_DEPTHS, type VerifyDepth } from '../domain/verify.ts';

/** One thing wrong with a backup: which backup, which object (when one), what. */
export interface VerifyProblem {
  backupId: string;
  /** The object key relative to the storage root, when the problem is about one object. */
  key?: string;
  message: string;
}

/** The outcome of verifying one backup at one depth. */
export interface VerifyOutcome {
  database: string;
  backupId: string;
  depth: VerifyDepth;
  ok: boolean;
  problems: VerifyProblem[];
  startedAt: string;
  finishedAt: string;
}
