import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { withConnection } from '../capture/server.ts';
import { isClosedPipe, startTool, ToolError } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { clientErrorLine, describeToolFailure } from './client-error.ts';
import { dataObject } from './download.ts';
import { openVerified, verifyObject } from './fetch.ts';
import { refuseOccupied } from './occupied.ts';
import { checkTarget } from './preflight.ts';
import { decryptStages, explainDecryptFailure, verifyDecryptable, type Decryption } from './decrypt.ts';

export interface RestoreOptions {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  manifest: Manifest;
  /** The database entry whose server receives the data (only its name and connection are used). */
  target: Pick<DatabaseConfig, 'name' | 'connection'>;
  /** Allow writing into schemas that already hold tables, views, routines, triggers or events. */
  overwrite: boolean;
  /** Do not write the restored statements to the target's binary log (needs SUPER/BINLOG ADMIN). */
  skipBinlog: boolean;
  /** A binlog replay follows (PITR): the target's fitness for it is checked before anything is written. */
  replay?: boolean;
  /**
   * Runs after the refusal check, before the target's fitness is checked and anything is written
   * (PITR verifies its binlog here and returns the largest statement the replay will send).
   */
  beforeWrite?: () => Promise<{ largestStatement?: number }>;
  /** How an encrypted backup is decrypted (the identity file); unused for an unencrypted one. */
  decryption: Decryption;
  logger: Logger;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

/** Client errors that say the server went away: the cause is known, no need to re-read the archive. */
const CONNECTION_LOST = /^ERROR (2002|2003|2006|2013|2055) /;

/**
 * Streams a logical backup from storage through decompression into the SQL client connected to
 * the target server. Refuses to write into schemas that hold anything unless `overwrite` is set.
 * When the target holds data, the archive is read once to check its size and SHA-256 before a
 * byte is applied (verify first: a corrupt archive never half-overwrites a good copy); into empty
 * schemas it is applied as it streams and a late mismatch is reported with what was applied.
 */
export async function restoreLogical(options: RestoreOptions): Promise<void> {
  const { manifest, target, storage } = options;
  const log = options.logger.child({ database: manifest.database, backup: manifest.id, target: target.name });
  const object = dataObject(manifest);

  const occupied = await refuseOccupied(target, manifest.schemas, options.overwrite, {
    hint: 'pass --yes to restore over them (objects in the backup are dropped and recreated), or --target another database entry',
  });
  const encryption = manifest.encryption;
  if (encryption) {
    // Read once through age before anything is written: a wrong identity, a truncated object or
    // a flipped byte is refused here, whether or not the schemas are empty.
    log.info({ key: object.key, sizeBytes: object.sizeBytes }, 'encrypted backup: decrypting it once before applying it');
    await verifyDecryptable(storage, object, encryption, options.decryption, {
      what: `restore backup ${manifest.id} into ${target.name}`,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  const needs = { skipBinlog: options.skipBinlog, replay: options.replay ?? false, ...(await options.beforeWrite?.()) };
  await withConnection(target.name, target.connection, (db) => checkTarget(db, target.name, needs));
  if (occupied.length > 0 && !encryption) {
    log.info({ key: object.key, sizeBytes: object.sizeBytes }, 'target holds data: verifying the backup before applying it');
    await verifyObject(storage, object, options.signal ? { signal: options.signal } : {}).catch((err: unknown) => {
      if (!isIntegrity(err)) throw err;
      throw new AgentError('integrity', `restore into ${target.name}: ${err.message}; nothing was written`, {
        hint: `backup ${manifest.id} is corrupt in storage: restore another one (agent list --database ${manifest.database})`,
        cause: err,
      });
    });
  }

  const client = await locateTool(options.config.tools.client, ['mariadb', 'mysql'], 'tools.client');
  const verifiedFirst = occupied.length > 0 || encryption !== null;
  log.info({ schemas: manifest.schemas, sizeBytes: object.sizeBytes, verifiedFirst }, 'restore started');
  const partly = `schema${manifest.schemas.length > 1 ? 's' : ''} ${manifest.schemas.join(', ')} of ${target.name} may be partly restored`;
  await withDefaultsFile(target.connection, client.flavor, async (defaultsFile) => {
    const args = [`--defaults-file=${defaultsFile}`, '--batch', '--max-allowed-packet=1G', '--default-character-set=utf8mb4'];
    if (options.skipBinlog) args.push('--init-command=SET sql_log_bin=0');
    const cancel = new AbortController();
    options.signal?.addEventListener('abort', () => cancel.abort(options.signal?.reason), { once: true });
    const tool = startTool(client.path, args, { stdin: 'pipe', stdout: 'ignore', signal: cancel.signal });
    const source = await openVerified(storage, object, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      signal: cancel.signal,
    }).catch((err: unknown) => {
      cancel.abort(err);
      throw err;
    });
    const decrypt = await decryptStages(encryption, options.decryption, `restore backup ${manifest.id} into ${target.name}`, cancel.signal);
    const feed = pipeline([source, ...decrypt, createDecompressor(object.compression), tool.stdin]).catch((err: unknown) => {
      // The client died or the read failed: stop the other side.
      cancel.abort(err);
      throw err;
    });
    const [fed, exited] = await Promise.allSettled([feed, tool.done]);
    if (fed.status === 'fulfilled' && exited.status === 'fulfilled') return;
    const clientFailed = exited.status === 'rejected' && (fed.status === 'fulfilled' || isClosedPipe(fed.reason));
    const reason: unknown = clientFailed ? (exited as PromiseRejectedResult).reason : (fed as PromiseRejectedResult).reason;
    const line = reason instanceof ToolError ? clientErrorLine(reason.stderr) : undefined;
    log.debug({ exitCode: reason instanceof ToolError ? reason.exitCode : undefined, error: describeToolFailure(reason) }, 'restore stream failed');
    // A corrupt archive shows first as bad SQL or a decompression error, long before the digest
    // completes at its end: whatever the symptom, name that cause (one more read, only on failure).
    let corrupt: unknown = isIntegrity(reason) ? reason : undefined;
    if (!corrupt && !verifiedFirst && !(line && CONNECTION_LOST.test(line))) {
      corrupt = await verifyObject(storage, object, options.signal ? { signal: options.signal } : {}).then(
        () => undefined,
        (err: unknown) => (isIntegrity(err) ? err : undefined),
      );
    }
    if (corrupt instanceof AgentError) {
      throw new AgentError('integrity', `restore into ${target.name}: ${corrupt.message}`, {
        hint:
          !verifiedFirst
            ? `the schemas were empty, so the backup was applied as it streamed; ${partly} from a corrupt archive: drop them and restore another backup`
            : `the archive changed after it was verified; ${partly}: restore another backup with --yes`,
        cause: corrupt,
      });
    }
    if (clientFailed) {
      throw new AgentError('tool', `restore into ${target.name}: ${describeToolFailure(reason)}`, {
        hint: `the SQL client stopped there; ${partly}`,
        cause: reason,
      });
    }
    if (reason instanceof AgentError) throw reason;
    const decryptFailure = encryption ? explainDecryptFailure(reason, encryption, options.decryption, `restore backup ${manifest.id} into ${target.name}`) : undefined;
    if (decryptFailure) {
      throw new AgentError(decryptFailure.kind, decryptFailure.message.replace(/; nothing was written$/, ''), { hint: `the archive changed after it was decrypted once; ${partly}: restore another backup with --yes`, cause: reason });
    }
    throw new AgentError('storage', `restore into ${target.name}: read backup ${manifest.id}: ${messageOf(reason)}`, { cause: reason });
  });
  log.info('restore completed');
}

function isIntegrity(err: unknown): err is AgentError {
  return err instanceof AgentError && err.kind === 'integrity';
}
