// TEMPORARY STUB on branch w/verify: the proof helper writes the real file (issue 15, depth
// `restore`); the lead merges theirs over this one. The input mirrors theirs as of 10:35 UTC.
import type { Logger } from 'pino';
import type { Manifest } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { VerifyProblem } from './types.ts';

export interface RestoreDepthInput {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  database: DatabaseConfig;
  /** A dump alone, or full → each incremental up to the one verified (restoreChain). */
  chain: readonly Manifest[];
  replayBinlog?: boolean;
  identityFile?: string | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
  onNotice?: (message: string) => void;
}

/** Problems found in the backup; throws when the environment (not the backup) failed. */
export async function verifyByRestore(_input: RestoreDepthInput): Promise<VerifyProblem[]> {
  throw new Error('restore depth not built yet');
}
