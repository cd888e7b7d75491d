import { rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Archive } from '../binlog/archive.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { privateTempDir } from '../capture/private-temp.ts';
import type { AgentConfig, Connection, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { Decryption } from '../restore/decrypt.ts';
import { restoreLogical } from '../restore/logical-restore.ts';
import { restorePhysical } from '../restore/physical-restore.ts';
import { planReplay, replayBinlog, type PitrPlan, type PitrTarget, type ReplayResult } from '../restore/pitr.ts';
import { verifyServer } from '../restore/verify-datadir.ts';
import { startSandbox, type Sandbox } from '../sandbox/mariadb-sandbox.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { datadirEstimate, figuresReplayTarget, figuresVerdict, spaceRefusal, type Replayed } from './restore-decisions.ts';
import type { VerifyProblem } from './types.ts';

/**
 * `agent verify --depth restore`: the backup (a dump, or a physical chain full → incrementals) is
 * restored into a throwaway MariaDB server in a private directory of TMPDIR (socket only, no
 * grant checks, no binlog), optionally the archived binlog replayed up to the last recoverable
 * time, and every table checked: CHECK TABLE, CHECKSUM TABLE … EXTENDED, a row count, compared
 * with the figures recorded at backup time when they describe the same point. The server is
 * stopped and the directory removed whatever happens; a SIGKILL leaves both to the next agent's
 * start (sweepTempDirs; the server dies with its parent).
 */

export interface RestoreDepthInput {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  /**
   * Whose backup this is: its name is its folder in the store (the binlog archive is read there);
   * its encryption's identity file decrypts when `identityFile` is not given. A configured entry,
   * or a `--from` store's database.
   */
  database: Pick<DatabaseConfig, 'name'> & Partial<Pick<DatabaseConfig, 'encryption'>>;
  /** As the catalog gives them: a dump alone, or full → each incremental up to the one verified (restoreChain). */
  chain: readonly Manifest[];
  /** Replay the archived binlog from the backup's position up to the last recoverable time. */
  replayBinlog?: boolean;
  /** The age identity file for an encrypted backup; default: the entry's encryption.identity_file. */
  identityFile?: string | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** Told what was not checked and why (figures not comparable, none recorded); also logged. */
  onNotice?: (message: string) => void;
}

/** Error kinds that say the environment, not the backup, failed: thrown, never reported as a problem. */
const NOT_THE_BACKUP = new Set(['usage', 'config', 'storage', 'locked', 'internal']);

export async function verifyByRestore(input: RestoreDepthInput): Promise<VerifyProblem[]> {
  const backup = input.chain.at(-1);
  if (!backup) throw new AgentError('usage', 'verify at depth restore: no backup given');
  const problem = (message: string): VerifyProblem => ({ backupId: backup.id, message });
  const log = input.logger.child({ database: input.database.name, backup: backup.id, depth: 'restore' });
  const notice = (message: string) => {
    log.warn(message);
    input.onNotice?.(message);
  };

  // The private directory goes in TMPDIR, which every agent start sweeps for a killed agent's leftovers.
  await checkSpace(tmpdir(), datadirEstimate(input.chain), backup.id);
  const dir = await privateTempDir('verify');
  let server: Sandbox | undefined;
  try {
    const decryption: Decryption = { agePath: input.config.tools.age, identityFile: input.identityFile ?? input.database.encryption?.identityFile };
    let replayed: Replayed = 'none';
    try {
      server = await restoreInto(input, dir, decryption);
      input.signal?.throwIfAborted();
      if (input.replayBinlog) {
        if (await replayToEnd(input, backup, server, decryption)) replayed = 'to-end';
      } else {
        // Figures taken after the backup (writes between the two snapshots): reach their point
        // by replaying the archive to their GTID, when the archive holds it.
        const target = figuresReplayTarget(backup);
        if (target && (await replayToFigures(input, backup, server, decryption, target, notice))) replayed = 'to-figures';
      }
      input.signal?.throwIfAborted();
    } catch (err) {
      if (input.signal?.aborted || !(err instanceof AgentError) || NOT_THE_BACKUP.has(err.kind)) throw err;
      log.error({ err }, 'restore failed');
      return [problem(`restore failed: ${err.message}${err.hint ? ` (${err.hint})` : ''}`)];
    }
    const verdict = figuresVerdict(backup, replayed);
    if (!verdict.compare) notice(verdict.notice);
    const checked = await verifyServer(server.socket, `backup ${backup.id}`, {
      schemas: backup.type === 'dump' ? backup.schemas : [],
      countRows: true,
      ...(verdict.compare ? { recorded: verdict.recorded } : {}),
    });
    log.info({ tables: checked.lines.length, failures: checked.failures.length, comparedWithFigures: verdict.compare }, 'restore verification done');
    return checked.failures.map(problem);
  } finally {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Refuses before anything is written when `dir`'s file system cannot hold one datadir. */
async function checkSpace(dir: string, needed: number, backupId: string): Promise<void> {
  const fs = await statfs(dir).catch((err: unknown) => {
    throw new AgentError('refused', `verify backup ${backupId} by restoring it: cannot read the free space of ${dir}: ${messageOf(err)}`, { cause: err });
  });
  const refusal = spaceRefusal({ path: dir, needed, free: fs.bavail * fs.bsize });
  if (refusal) {
    throw new AgentError('refused', `verify backup ${backupId} by restoring it: ${refusal}`, {
      hint: 'free space there, or point TMPDIR at a file system with room for one datadir of this database',
    });
  }
}

/** A private server's connection: its socket, as root (no grant checks). */
function socketConnection(server: Sandbox): Connection {
  return { host: undefined, port: 0, socket: server.socket, user: 'root', password: undefined, tls: undefined };
}

/** The restored server: a fresh one the dump is loaded into, or one started on the prepared chain. */
async function restoreInto(input: RestoreDepthInput, dir: string, decryption: Decryption): Promise<Sandbox> {
  const [first] = input.chain;
  const signal = input.signal ? { signal: input.signal } : {};
  input.signal?.throwIfAborted();
  if (first?.type === 'dump') {
    if (input.chain.length !== 1) throw new AgentError('usage', `verify at depth restore: a dump (${first.id}) has no chain`);
    // Grant checks stay on: without them the event scheduler is disabled and a dump's events fail.
    const server = await startSandbox({ dir: join(dir, 'server'), port: 0, serverId: 4244, private: true, grantTables: true });
    try {
      input.signal?.throwIfAborted();
      await restoreLogical({
        config: input.config,
        storage: input.storage,
        manifest: first,
        target: { name: 'the throwaway server', connection: socketConnection(server) },
        overwrite: false,
        skipBinlog: false,
        replay: input.replayBinlog ?? false,
        decryption,
        logger: input.logger,
        ...signal,
      });
      return server;
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
  const { datadir } = await restorePhysical({
    config: input.config,
    storage: input.storage,
    chain: [...input.chain],
    datadir: join(dir, 'data'),
    replace: false,
    decryption,
    logger: input.logger,
    ...signal,
  });
  return startSandbox({ dir: join(dir, 'server'), port: 0, existingDatadir: datadir, serverId: 4244, private: true });
}

/** Replays the archived binlog from the backup's position to the last recoverable time; false when there was nothing past it. */
async function replayToEnd(input: RestoreDepthInput, backup: Manifest, server: Sandbox, decryption: Decryption): Promise<boolean> {
  const archive = await Archive.load(input.storage, input.database.name);
  const summary = await archive.summarize([backup]);
  if (!summary.lastRecoverableAt) {
    throw new AgentError('refused', `the binlog archive holds nothing to replay from backup ${backup.id}'s position${backup.binlog ? ` (${backup.binlog.file}:${backup.binlog.position})` : ''}`);
  }
  const target: PitrTarget = { kind: 'time', at: new Date(summary.lastRecoverableAt), text: summary.lastRecoverableAt };
  const plan = await planReplay(archive, backup, target, summary.lastRecoverableAt);
  const result = await replay(input, backup, server, decryption, archive, plan, target);
  input.logger.info({ transactions: result.transactions, to: summary.lastRecoverableAt }, 'binlog replayed to the last recoverable time');
  return result.transactions > 0;
}

/**
 * Replays the archive to the GTID of the figures' snapshot; false (with a notice) when the
 * archive does not hold the binlog from the backup to there, which is no fault of the backup.
 */
async function replayToFigures(input: RestoreDepthInput, backup: Manifest, server: Sandbox, decryption: Decryption, target: PitrTarget, notice: (message: string) => void): Promise<boolean> {
  const archive = await Archive.load(input.storage, input.database.name);
  const summary = await archive.summarize([backup]);
  let plan;
  try {
    plan = await planReplay(archive, backup, target, summary.lastRecoverableAt);
  } catch (err) {
    if (!(err instanceof AgentError) || err.kind !== 'refused') throw err;
    notice(`the binlog archive cannot take backup ${backup.id} to the point of its figures (GTID ${target.text}): ${err.message}`);
    return false;
  }
  const result = await replay(input, backup, server, decryption, archive, plan, target);
  input.logger.info({ transactions: result.transactions, to: target.text }, "binlog replayed to the figures' point");
  return true;
}

async function replay(input: RestoreDepthInput, backup: Manifest, server: Sandbox, decryption: Decryption, archive: Archive, plan: PitrPlan, target: PitrTarget): Promise<ReplayResult> {
  return replayBinlog({
    config: input.config,
    storage: input.storage,
    archive,
    plan,
    target,
    connection: socketConnection(server),
    targetName: 'the throwaway server',
    skipBinlog: false,
    // A dump holds only its schemas: writes to any other are not replayed (as a PITR does).
    ...(backup.type === 'dump' ? { schemas: new Set(backup.schemas) } : {}),
    // A server on a restored datadir starts without grant checks; loading them lets replayed
    // account statements run (harmless on the fresh server of a dump, which has them).
    preamble: 'FLUSH PRIVILEGES;\n',
    decryption,
    logger: input.logger,
    ...(input.signal ? { signal: input.signal } : {}),
  });
}
