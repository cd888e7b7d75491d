import type { Logger } from 'pino';
import { findBackup } from '../catalog/catalog.ts';
import { listBackups, type ListOptions } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { restoreChain } from './chain.ts';
import type { Decryption } from './decrypt.ts';
import { dataObject } from './download.ts';
import { restoreLogical } from './logical-restore.ts';
import { restorePhysical } from './physical-restore.ts';
import type { PitrTarget, ReplayResult } from './pitr.ts';
import { restoreToPoint } from './restore-to-point.ts';
import { verifyDatadir, type Verification, type VerifyExpectations } from './verify-datadir.ts';
import { figuresVerdict } from '../verify/restore-decisions.ts';

/**
 * The one entry point of a restore, for the CLI, the daemon and an HTTP API alike: a request
 * (what, from which database, into where) in, an outcome out. Choosing the backup, fetching the
 * chain, planning and replaying the binlog and verifying the datadir all happen here; the caller
 * only parses its input and reports the outcome.
 */

/** Where the data goes: a database entry's server, or a datadir a server can start on. */
export type RestoreDestination =
  | {
      kind: 'server';
      target: DatabaseConfig;
      /** Allow writing into schemas that already hold objects. */
      overwrite: boolean;
      /** Keep the restored statements out of the target's binary log. */
      skipBinlog: boolean;
    }
  | {
      kind: 'datadir';
      path: string;
      /** Allow a non-empty datadir: it is moved aside, never deleted. */
      replace: boolean;
      /** Start a throwaway server on the result and check every table. */
      verify: boolean;
    };

export interface RestoreRequest {
  /** Whose backups: the database's name is its folder in the store (a configured entry, or one of a `--from` store). */
  source: Pick<DatabaseConfig, 'name'> & Partial<Pick<DatabaseConfig, 'encryption'>>;
  /** A backup ID; undefined: the newest completed backup of the destination's kind. Not with `point`. */
  backup?: string | undefined;
  /** Restore to this point in time: the base is chosen for it and the binlog replayed up to it. */
  point?: PitrTarget | undefined;
  destination: RestoreDestination;
  /**
   * The age identity file for encrypted backups (`--identity`); default: the source entry's
   * encryption.identity_file, else the target entry's. Only its path is ever passed on.
   */
  identityFile?: string | undefined;
  /** How messages name `identityFile` and where to give another (an API request's identity lives in a temp file the user never saw). */
  identityLabel?: Decryption['label'];
  /**
   * The passphrase file for passphrase-encrypted backups (`--passphrase-file`); default: the
   * source entry's encryption.passphrase_file, else the target entry's. Only its path is passed on.
   */
  passphraseFile?: string | undefined;
}

/** How this restore decrypts: the identity and passphrase files it names or the configured ones, and tools.age. */
export function decryptionFor(request: RestoreRequest, config: Pick<AgentConfig, 'tools'>): Decryption {
  const target = request.destination.kind === 'server' ? request.destination.target : undefined;
  return {
    agePath: config.tools.age,
    identityFile: request.identityFile ?? request.source.encryption?.identityFile ?? target?.encryption?.identityFile,
    ...(request.identityLabel ? { label: request.identityLabel } : {}),
    passphraseFile: request.passphraseFile ?? request.source.encryption?.passphrase?.file ?? target?.encryption?.passphrase?.file,
  };
}

/** Told as the restore goes, so a caller can report a step even if a later one fails. */
export interface RestoreListener {
  /** The engine chose the backup (none was named); `replayFrom` is where the binlog replay starts. */
  selected?(base: Manifest, replayFrom: { file: string; position: number } | undefined): void;
  /** Bytes of backup data fetched so far, of `total`. */
  progress?(bytes: number, total: number): void;
  /** The existing datadir was moved here (never deleted). */
  movedAside?(path: string): void;
}

export interface RestoreEnv {
  config: AgentConfig;
  storage: StorageDriver;
  logger: Logger;
  signal?: AbortSignal | undefined;
  on?: RestoreListener;
  /** How the catalog is read (the manifest cache), when the caller keeps one. */
  catalog?: ListOptions;
}

export interface RestoreOutcome {
  source: string;
  /** The backups restored, the full or the dump first, then each incremental in order. */
  restored: Manifest[];
  /** Stored bytes of the restored backups' data. */
  bytes: number;
  /** The target entry's name, or the datadir's absolute path. */
  into: string;
  movedAside: string | undefined;
  /** The binlog replayed after the base (point-in-time restores only). */
  replay: ReplayResult | undefined;
  /** The throwaway server's verdict over the datadir (when asked for). */
  verification: Verification | undefined;
  durationMs: number;
}

export async function runRestore(request: RestoreRequest, env: RestoreEnv): Promise<RestoreOutcome> {
  if (request.point) {
    if (request.backup !== undefined) {
      throw new AgentError('usage', '--backup cannot be combined with --to-time/--to-gtid: the base is chosen for the target');
    }
    return restoreToPoint(request, request.point, env);
  }
  const { source, destination } = request;
  const physical = destination.kind === 'datadir';
  const manifest = await findBackup(env.storage, source.name, request.backup, physical ? ['full', 'incremental'] : ['dump'], env.catalog);
  if (request.backup === undefined) env.on?.selected?.(manifest, undefined);
  if (destination.kind === 'datadir') return restoreDatadir(request, destination, manifest, env);
  if (manifest.type !== 'dump') {
    throw new AgentError('usage', `backup ${manifest.id} is a physical (${manifest.type}) backup`, { hint: 'restore it into a datadir with --datadir DIR' });
  }
  const total = dataObject(manifest).sizeBytes;
  const started = Date.now();
  await restoreLogical({
    config: env.config,
    storage: env.storage,
    manifest,
    target: destination.target,
    overwrite: destination.overwrite,
    skipBinlog: destination.skipBinlog,
    decryption: decryptionFor(request, env.config),
    logger: env.logger,
    onProgress: (bytes) => env.on?.progress?.(bytes, total),
    signal: env.signal,
  });
  env.on?.progress?.(total, total);
  return {
    source: source.name,
    restored: [manifest],
    bytes: total,
    into: destination.target.name,
    movedAside: undefined,
    replay: undefined,
    verification: undefined,
    durationMs: Date.now() - started,
  };
}

async function restoreDatadir(
  request: RestoreRequest,
  destination: Extract<RestoreDestination, { kind: 'datadir' }>,
  manifest: Manifest,
  env: RestoreEnv,
): Promise<RestoreOutcome> {
  const listing = await listBackups(env.storage, request.source.name, env.catalog);
  const chain = restoreChain(manifest, listing.backups, listing.unreadable);
  const total = chain.reduce((sum, m) => sum + dataObject(m).sizeBytes, 0);
  const started = Date.now();
  const result = await restorePhysical({
    config: env.config,
    storage: env.storage,
    chain,
    datadir: destination.path,
    replace: destination.replace,
    decryption: decryptionFor(request, env.config),
    logger: env.logger,
    onProgress: (bytes) => env.on?.progress?.(bytes, total),
    signal: env.signal,
  });
  env.on?.progress?.(total, total);
  if (result.movedAside) env.on?.movedAside?.(result.movedAside);
  const durationMs = Date.now() - started;
  return {
    source: request.source.name,
    restored: chain,
    bytes: total,
    into: result.datadir,
    movedAside: result.movedAside,
    replay: undefined,
    verification: destination.verify ? await verifyDatadir(result.datadir, verifyExpectations(manifest, env.logger)) : undefined,
    durationMs,
  };
}

/**
 * What `restore --datadir --verify` checks the restored chain against: its schemas, and the table
 * figures recorded at backup time (verify.record_figures) when they describe the backup's own point
 * (row counts and CHECKSUM TABLE must then match); otherwise the tables only against themselves,
 * with the reason logged.
 */
function verifyExpectations(manifest: Manifest, logger: Logger): VerifyExpectations {
  const verdict = figuresVerdict(manifest, 'none');
  if (!verdict.compare) {
    if (manifest.figures) logger.warn({ backup: manifest.id }, verdict.notice);
    return { schemas: manifest.schemas };
  }
  return { schemas: manifest.schemas, countRows: true, recorded: verdict.recorded };
}
