import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../binlog/archive.ts';
import { listBackups, type UnreadableBackup } from '../catalog/listing.ts';
import { describeUnreadable, hiddenNewer } from '../catalog/catalog.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import { startSandbox } from '../sandbox/mariadb-sandbox.ts';
import { restoreChain } from './chain.ts';
import { restoreLogical } from './logical-restore.ts';
import { restorePhysical } from './physical-restore.ts';
import { chooseBase, planReplay, replayBinlog, type PitrPlan, type PitrTarget } from './pitr.ts';
import { verifyReplay } from './replay-verify.ts';
import { decryptionFor, type RestoreDestination, type RestoreEnv, type RestoreOutcome, type RestoreRequest } from './run-restore.ts';
import type { Decryption } from './decrypt.ts';
import { dataObject } from './download.ts';
import { verifyDatadir } from './verify-datadir.ts';
import { privateTempDir } from '../capture/private-temp.ts';

/**
 * A point-in-time restore: the newest base taken before the target, restored, then the archived
 * binlog replayed from the base's exact position up to the target. The binlog the replay needs is
 * read and checked before the destination is touched.
 */
export async function restoreToPoint(request: RestoreRequest, target: PitrTarget, env: RestoreEnv): Promise<RestoreOutcome> {
  const { source, destination } = request;
  const physical = destination.kind === 'datadir';
  const [{ backups, unreadable }, archive] = await Promise.all([listBackups(env.storage, source.name, env.catalog), Archive.load(env.storage, source.name)]);
  const summary = await archive.summarize(backups);
  const base = chooseBase(backups, target, physical ? ['full', 'incremental'] : ['dump']);
  // A manifest that cannot be read may be a newer base for this target: choose none rather than guess.
  const hidden = hiddenNewer(unreadable, base, target.kind === 'time' ? target.at : undefined);
  if (hidden) {
    throw new AgentError('integrity', `point-in-time restore of ${source.name} to ${target.text}: ${describeUnreadable(hidden)}; it may be the base this restore needs`, {
      hint: 'repair or remove the unreadable manifest (`agent list` names it), then restore again',
    });
  }
  if (!base) {
    throw new AgentError('refused', `point-in-time restore of ${source.name} to ${target.text}: no ${physical ? 'physical backup' : 'dump'} with binlog coordinates was taken before it`, {
      hint: summary.lastRecoverableAt ? `the last recoverable time is ${summary.lastRecoverableAt}` : 'take a dump while binlog capture runs',
    });
  }
  const plan = await planReplay(archive, base, target, summary.lastRecoverableAt);
  env.on?.selected?.(base, plan.from);
  const job: PointJob = { source: source.name, base, backups, unreadable, plan, archive, target, decryption: decryptionFor(request, env.config), started: Date.now() };
  if (destination.kind === 'datadir') return datadirToPoint(destination, job, env);
  return serverToPoint(destination, job, env);
}

interface PointJob {
  source: string;
  base: Manifest;
  /** The catalog as listed when the base was chosen. */
  backups: Manifest[];
  /** The manifests that listing could not read (a chain that needs one says so). */
  unreadable: UnreadableBackup[];
  plan: PitrPlan;
  archive: Archive;
  target: PitrTarget;
  decryption: Decryption;
  started: number;
}

async function checkReplay(job: PointJob, env: RestoreEnv): Promise<{ largestStatement?: number }> {
  const checked = await verifyReplay(env.storage, job.archive, job.plan, job.target, job.decryption, env.signal);
  env.logger.info(checked, 'binlog for the replay verified');
  return { largestStatement: checked.largestStatement };
}

async function serverToPoint(destination: Extract<RestoreDestination, { kind: 'server' }>, job: PointJob, env: RestoreEnv): Promise<RestoreOutcome> {
  await restoreLogical({
    config: env.config,
    storage: env.storage,
    manifest: job.base,
    target: destination.target,
    overwrite: destination.overwrite,
    skipBinlog: destination.skipBinlog,
    decryption: job.decryption,
    replay: true,
    // The binlog the replay needs is read and checked before the base is written.
    beforeWrite: () => checkReplay(job, env),
    logger: env.logger,
    signal: env.signal,
  });
  const replay = await replayBinlog({
    config: env.config,
    storage: env.storage,
    archive: job.archive,
    plan: job.plan,
    target: job.target,
    connection: destination.target.connection,
    targetName: destination.target.name,
    skipBinlog: destination.skipBinlog,
    decryption: job.decryption,
    // A dump holds only its schemas: writes to any other (and to mysql.*) are not replayed.
    schemas: new Set(job.base.schemas),
    logger: env.logger,
    signal: env.signal,
  });
  return {
    source: job.source,
    restored: [job.base],
    bytes: dataObject(job.base).sizeBytes,
    into: destination.target.name,
    movedAside: undefined,
    replay,
    verification: undefined,
    durationMs: Date.now() - job.started,
  };
}

/**
 * Into a datadir: the physical chain of the base restored and prepared, then a private server
 * started on it (socket only, no grant checks, no binlog), the binlog replayed into it, and the
 * server shut down cleanly: the datadir is then at the target.
 */
async function datadirToPoint(destination: Extract<RestoreDestination, { kind: 'datadir' }>, job: PointJob, env: RestoreEnv): Promise<RestoreOutcome> {
  const chain = restoreChain(job.base, job.backups, job.unreadable);
  // The binlog is checked before the datadir is touched (the chain is checked by restorePhysical).
  await checkReplay(job, env);
  const restored = await restorePhysical({
    config: env.config,
    storage: env.storage,
    chain,
    datadir: destination.path,
    replace: destination.replace,
    decryption: job.decryption,
    logger: env.logger,
    signal: env.signal,
  });
  if (restored.movedAside) env.on?.movedAside?.(restored.movedAside);
  const dir = await privateTempDir('pitr');
  let replay;
  try {
    const server = await startSandbox({ dir, port: 0, existingDatadir: restored.datadir, serverId: 4243, private: true });
    try {
      replay = await replayBinlog({
        config: env.config,
        storage: env.storage,
        archive: job.archive,
        plan: job.plan,
        target: job.target,
        connection: { host: undefined, port: 0, socket: server.socket, user: 'root', password: undefined, tls: undefined },
        targetName: restored.datadir,
        skipBinlog: false,
        // Started without grant checks; loading them lets replayed account statements run.
        preamble: 'FLUSH PRIVILEGES;\n',
        decryption: job.decryption,
        logger: env.logger,
        signal: env.signal,
      });
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const durationMs = Date.now() - job.started;
  return {
    source: job.source,
    restored: chain,
    bytes: chain.reduce((sum, m) => sum + dataObject(m).sizeBytes, 0),
    into: restored.datadir,
    movedAside: restored.movedAside,
    replay,
    verification: destination.verify ? await verifyDatadir(restored.datadir, { schemas: job.base.schemas }) : undefined,
    durationMs,
  };
}
