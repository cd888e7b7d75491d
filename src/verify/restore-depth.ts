// TEMPORARY STUB on branch w/verify: the proof helper writes the real file (issue 15, depth
// `restore`); the lead merges theirs over this one.
import type { Logger } from 'pino';
import type { Manifest } from '../catalog/manifest.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { VerifyProblem } from './types.ts';

export interface RestoreDepthInput {
  storage: StorageDriver;
  database: DatabaseConfig;
  manifest: Manifest;
  /** Full backup first, then each incremental down to `manifest` (just `manifest` for a dump). */
  chain: Manifest[];
  /** The age identity file, when one is configured. */
  identityFile: string | undefined;
  logger: Logger;
  signal: AbortSignal;
}

export async function verifyByRestore(_input: RestoreDepthInput): Promise<VerifyProblem[]> {
  throw new Error('restore depth not built yet');
}
