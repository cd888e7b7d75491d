import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { listBackups } from '../catalog/listing.ts';
import { manifestKeyOf } from '../catalog/catalog.ts';
import { newBackupId, physicalKey } from '../catalog/keys.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { buildPhysicalArgs, parseBinlogPos, parseCheckpoints, parseReplicaPosition, planPhysical } from '../capture/physical.ts';
import { readDatadir, readServerInfo, withConnection, type ServerInfo } from '../capture/server.ts';
import { locateTool, type ToolInfo } from '../capture/tools.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { takeBackupLease, type BackupLease } from './backup-lease.ts';
import { buildManifest, captureToStorage, checkStorage, commitOrRemove } from './capture.ts';
import { dataExtension, encryptionOf, recordOf, type Encrypt } from '../pipeline/encryption.ts';
import type { BackupContext } from './run-backup.ts';
import { privateTempDir } from '../capture/private-temp.ts';
import { takeTableFigures } from './table-figures.ts';

function backupHint(stderr: string): string {
  if (/Access denied/i.test(stderr)) return 'check user and password of this database entry, and the grants for mariadb-backup in README';
  if (/Can't change dir|cannot open|No such file|Permission denied/i.test(stderr)) {
    return 'mariadb-backup needs to read the server datadir: run the agent on the database host (or a sidecar that mounts it), as a user that can read it; set physical.datadir if the path differs';
  }
  return 'the output of mariadb-backup above says what went wrong';
}

/**
 * Takes one physical backup with mariadb-backup: `--backup --stream=xbstream` → compress →
 * SHA-256 → storage, no data on local disk (only the small --extra-lsndir files, in a private temp
 * directory removed after). An incremental starts at the previous backup's to_lsn
 * (`--incremental-lsn`), so no base directory is needed; when there is no usable base it is a full
 * backup instead, and the log says why.
 */
export async function runPhysicalBackup(ctx: BackupContext, requested: 'full' | 'incremental'): Promise<Manifest> {
  const { database, storage } = ctx;
  const now = ctx.now ?? (() => new Date());
  const startedAt = now();
  const id = newBackupId(startedAt);

  // Started side by side with the server's queries (each is a round trip); awaited after the
  // flavor check, whose error is the one to report for a MySQL server.
  const toolFound = locateTool(ctx.config.tools.backup, ['mariadb-backup', 'mariabackup'], 'tools.backup');
  const storageReached = checkStorage(storage, database.name);
  const encryptFound = encryptionOf(database.encryption, ctx.config.tools.age);
  encryptFound.catch(() => undefined);
  toolFound.catch(() => undefined);
  storageReached.catch(() => undefined);
  const { server, datadir } = await withConnection(database.name, database.connection, async (db) => ({
    server: await readServerInfo(db),
    datadir: database.physical.datadir ?? (await readDatadir(db)),
  }));
  if (server.flavor !== 'mariadb') {
    throw new AgentError('config', `physical backups of ${database.name}: mariadb-backup works with MariaDB servers, this one is MySQL ${server.version}`, {
      hint: 'use type: dump for MySQL servers',
    });
  }
  const [tool, encrypt] = await Promise.all([toolFound, encryptFound, storageReached]);
  // Ordering against prune (src/lease/prune-guard.ts): the lease is taken BEFORE the catalog is
  // read, then names the chosen parent, then the parent's manifest is checked again. Prune checks
  // the leases before removing a backup's manifest and again after (putting the manifest back if
  // a lease needs it now), and removes data only after both. So either prune sees the parent named
  // (and keeps it), or its manifest was already gone when this backup looked again (and this
  // backup becomes a full one). The parent is checked once more right before the commit.
  const lease = await takeBackupLease({
    storage,
    database: database.name,
    id,
    type: requested,
    ttlMs: ctx.config.prune.lock_ttl,
    log: ctx.logger.child({ database: database.name, backup: id }),
  });
  try {
    return await takePhysical(ctx, { id, startedAt, server, datadir, tool, encrypt, lease, requested });
  } finally {
    await lease.end();
  }
}

interface PhysicalRun {
  id: string;
  startedAt: Date;
  server: ServerInfo;
  datadir: string;
  tool: ToolInfo;
  encrypt: Encrypt | undefined;
  lease: BackupLease;
  requested: 'full' | 'incremental';
}

/** Whether the parent's manifest is still where it was listed (its own layout: a chain may span both). */
async function parentStillThere(storage: StorageDriver, parent: Manifest): Promise<boolean> {
  try {
    return (await storage.stat(manifestKeyOf(parent))) !== undefined;
  } catch (err) {
    throw new AgentError('storage', `check the parent backup ${parent.id} of ${parent.database} in ${storage.location}: ${describeStorageError(err)}`, { cause: err });
  }
}

async function takePhysical(ctx: BackupContext, run: PhysicalRun): Promise<Manifest> {
  const { database, storage } = ctx;
  const now = ctx.now ?? (() => new Date());
  const { id, startedAt, server, datadir, tool, encrypt, lease, requested } = run;
  const { backups } = await listBackups(storage, database.name, ctx.catalog);
  let plan = planPhysical(requested, backups, server, database.physical.max_chain_length);
  if (plan.type === 'incremental') {
    await lease.name('incremental', plan.parent.id);
    if (!(await parentStillThere(storage, plan.parent))) {
      plan = { type: 'full', reason: `its base ${plan.parent.id} was removed by prune meanwhile` };
    }
  }
  if (plan.type === 'full' && requested === 'incremental') await lease.name('full', null);
  const type = plan.type;
  const log = ctx.logger.child({ database: database.name, backup: id, type });
  if (requested === 'incremental' && plan.type === 'full') log.info({ reason: plan.reason }, 'taking a full backup instead of an incremental');
  const parent = plan.type === 'incremental' ? plan.parent : undefined;
  const key = physicalKey(database.name, id, dataExtension(database.compression, encrypt));
  log.info({ tool: tool.versionLine, server: server.version, datadir, parent: parent?.id, storage: storage.location }, 'backup started');
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, lease.signal]) : lease.signal;
  const confirm = async () => {
    await lease.confirm();
    if (parent && !(await parentStillThere(storage, parent))) {
      throw new AgentError('storage', `its base backup ${parent.id} was removed while it ran`, { hint: 'take a full backup (--type full), or keep more backups in retention' });
    }
  };

  const lsnDir = await privateTempDir('lsn');
  try {
    const stream = await withDefaultsFile(
      database.connection,
      'mariadb',
      async (defaultsFile) => {
        const args = buildPhysicalArgs({
          defaultsFile,
          lsnDir,
          datadir,
          incrementalLsn: parent?.physical.toLsn,
          replica: database.physical.replica,
          extraArgs: database.physical.extra_args,
        });
        return captureToStorage(
          { database: database.name, storage, compression: database.compression, encrypt, signal },
          { file: tool.path, args, key, log, action: `back up database ${database.name} with ${tool.name}`, hint: backupHint },
        );
      },
      'mariadb-backup',
    );

    let checkpoints;
    let info = '';
    try {
      checkpoints = parseCheckpoints(await readFile(join(lsnDir, 'xtrabackup_checkpoints'), 'utf8'));
      info = await readFile(join(lsnDir, 'xtrabackup_info'), 'utf8').catch(() => '');
    } catch (err) {
      await storage.delete(key).catch(() => undefined);
      throw new AgentError('tool', `read the LSNs mariadb-backup recorded for ${database.name}: ${messageOf(err)}`, { cause: err });
    }
    // With --slave-info, mariadb-backup writes the primary's coordinates (xtrabackup_slave_info)
    // into the stream only, not into --extra-lsndir; it also reports them on stderr.
    const primary = database.physical.replica ? parseReplicaPosition(stream.toolStderr) : null;
    if (database.physical.replica && !primary) {
      log.warn('physical.replica is set but mariadb-backup reported no replica position: is this server a replica?');
    }

    // verify.record_figures: a snapshot right after mariadb-backup finished, whose consistent point
    // is its end (BACKUP STAGE BLOCK_COMMIT): equal positions when nothing committed in between.
    const figures = database.verify.record_figures ? await takeTableFigures({ database: database.name, connection: database.connection, schemas: undefined, logger: log, signal, now }) : undefined;
    if (figures && !figures.figures) log.warn({ reason: figures.reason }, 'table figures not recorded');
    const completedAt = now();
    const manifest = buildManifest({
      id,
      database: database.name,
      type,
      ...(figures?.figures ? { figures: figures.figures } : {}),
      trigger: ctx.trigger,
      startedAt,
      completedAt,
      compression: database.compression,
      encryption: encrypt ? recordOf(encrypt) : undefined,
      key,
      stream,
      schemas: [],
      binlog: parseBinlogPos(info),
      physical: {
        fromLsn: checkpoints.fromLsn,
        toLsn: checkpoints.toLsn,
        lastLsn: checkpoints.lastLsn,
        parent: parent?.id ?? null,
        chainLength: parent ? parent.physical.chainLength + 1 : 1,
        datadir,
        primary,
      },
      server,
      tool,
    });
    await commitOrRemove(storage, manifest, log, confirm);
    log.info(
      { sizeBytes: manifest.sizeBytes, fromLsn: checkpoints.fromLsn, toLsn: checkpoints.toLsn, durationMs: completedAt.getTime() - startedAt.getTime() },
      'backup completed',
    );
    return manifest;
  } finally {
    await rm(lsnDir, { recursive: true, force: true });
  }
}
