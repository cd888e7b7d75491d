import type { Logger } from 'pino';
import { findBackup } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import type { CommandContext, StoredDatabase } from '../cli/context.ts';
import { withSecretFile } from '../capture/secret-file.ts';
import { readIdentityText } from '../config/age-identity.ts';
import { parsePassphrase, shortRecipient } from '../config/age-recipient.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import type { StorageConfig } from '../config/schema.ts';
import type { Secret } from '../config/secret.ts';
import { AgentError, messageOf } from '../errors.ts';
import { refuseOccupied } from '../restore/occupied.ts';
import { chooseBase, parseTarget } from '../restore/pitr.ts';
import { runRestore, type RestoreRequest } from '../restore/run-restore.ts';
import { brief } from './brief.ts';
import type { DaemonEventBus } from './events.ts';
import type { JobRecord, JobRegistry } from './job-registry.ts';

/** A restore asked for through the API (POST /v1/restores). */
export interface RestoreApiRequest {
  database: string;
  /** Another store (`source` of the request): the database is then that store's folder, and `target` an entry. */
  from?: StorageConfig | undefined;
  target?: string | undefined;
  backupId?: string | undefined;
  toTime?: string | undefined;
  toGtid?: string | undefined;
  overwrite: boolean;
  skipBinlog: boolean;
  /**
   * An age identity (the text of a key file) for an encrypted backup, instead of the entries'
   * encryption.identity_file. A secret: it reaches age only as a 0600 file in a private temp
   * directory (unlinked, read through the daemon's descriptor) for the job's lifetime.
   */
  identity?: Secret | undefined;
  /** The passphrase of a passphrase-encrypted backup, instead of the entries' encryption.passphrase_file; a secret, passed as the identity is. */
  passphrase?: Secret | undefined;
}

export interface ApiRestoreDeps {
  config: () => AgentConfig;
  context: () => CommandContext;
  jobs: JobRegistry;
  logger: Logger;
  bus: DaemonEventBus;
}

/** Where an API caller gives an identity, for the hints of decryption errors. */
const WHERE = 'body.identity of POST /v1/restores, or encryption.identity_file of the source or target entry on the daemon host';

/** `text` with every line of the identity and the passphrase replaced: no message of the job can carry a secret, even one quoted by a tool. */
function scrubber(identity: Secret | undefined, passphrase: Secret | undefined): (text: string) => string {
  const keys = [
    ...(identity
      ?.reveal()
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#')) ?? []),
    ...(passphrase ? [passphrase.reveal()] : []),
  ];
  return (text) => keys.reduce((t, key) => t.split(key).join('**redacted**'), text);
}

/**
 * A restore asked for through the API into a configured entry's server: checked at once (the
 * entries, the identity's form, the backup, and a target that holds data without `overwrite` is
 * refused before the job exists), then run as a job. Physical backups go into a datadir on the
 * host (`agent restore --datadir`): refused here with that reason.
 */
export function createApiRestore(deps: ApiRestoreDeps): (request: RestoreApiRequest, requestedBy: string) => Promise<JobRecord> {
  return async (request, requestedBy) => {
    const config = deps.config();
    const context = deps.context();
    const entry = config.databases.find((d) => d.name === request.database);
    if (!entry && !request.from) throw new AgentError('usage', `body.database: no database entry named ${request.database}`);
    const source: StoredDatabase = request.from ? { name: request.database, storage: request.from } : (entry as DatabaseConfig);
    const target = config.databases.find((d) => d.name === (request.target ?? request.database));
    if (!target) throw new AgentError('usage', `body.target: no database entry named ${request.target ?? request.database}`, { hint: `the configuration names: ${config.databases.map((d) => d.name).join(', ')}` });
    let given: { recipients: string[] } | undefined;
    if (request.identity !== undefined) {
      const read = readIdentityText(request.identity.reveal());
      if ('problem' in read) throw new AgentError('usage', `body.identity: ${read.problem}`, { hint: 'send the content of an age key file (age-keygen writes one), with its line breaks as \\n' });
      given = read;
    }
    if (request.passphrase !== undefined) {
      const read = parsePassphrase(request.passphrase.reveal());
      if ('problem' in read) throw new AgentError('usage', `body.passphrase: ${read.problem.replace('it must hold', 'send')}`);
    }
    let point;
    try {
      point = parseTarget(request.toTime, request.toGtid);
    } catch (err) {
      throw new AgentError('usage', messageOf(err).replace('--to-time', 'body.to_time').replace('--to-gtid', 'body.to_gtid'));
    }
    if (point && request.backupId !== undefined) throw new AgentError('usage', 'body.backup_id: give a backup, or a point in time (to_time, to_gtid), not both');
    const storage = await context.storage(source);
    const catalog = await context.catalog(source);
    const occupiedHint = { hint: 'send "overwrite": true to restore over them (objects in the backup are dropped and recreated)', nothingWritten: true };
    if (!point) {
      const manifest = await findBackup(storage, source.name, request.backupId, ['dump'], catalog);
      if (manifest.type !== 'dump') throw new AgentError('usage', `body.backup_id: backup ${manifest.id} is a physical (${manifest.type}) backup: restore it with agent restore --datadir on the host`);
      await refuseOccupied(target, manifest.schemas, request.overwrite, occupiedHint);
    } else {
      // A point in time restores the dump the job will choose as its base: its schemas are checked now, as for a backup.
      const base = chooseBase((await listBackups(storage, source.name, catalog)).backups, point, ['dump']);
      if (base) await refuseOccupied(target, base.schemas, request.overwrite, occupiedHint);
    }
    const job = deps.jobs.create('restore', { database: source.name, trigger: 'api', requestedBy });
    job.started();
    const log = deps.logger;
    log.info(
      { job: job.record.id, database: source.name, target: target.name, backup: request.backupId, toTime: request.toTime, toGtid: request.toGtid, identity: given ? 'given in the request' : 'configured', passphrase: request.passphrase ? 'given in the request' : undefined, by: requestedBy },
      'restore started through the API',
    );
    const restore: RestoreRequest = { source, backup: request.backupId, point, destination: { kind: 'server', target, overwrite: request.overwrite, skipBinlog: request.skipBinlog } };
    const env = { config, storage, logger: log, signal: job.signal, catalog, on: { progress: (bytes: number) => job.progress(bytes) } };
    const withPassphrase = <T>(fn: (passphraseFile: string | undefined) => Promise<T>): Promise<T> =>
      request.passphrase === undefined ? fn(undefined) : withSecretFile('passphrase.txt', `${request.passphrase.reveal()}\n`, fn);
    const run = () =>
      withPassphrase((passphraseFile) => {
        const withSecrets: RestoreRequest = { ...restore, ...(passphraseFile === undefined ? {} : { passphraseFile }) };
        return request.identity === undefined || given === undefined
          ? runRestore({ ...withSecrets, identityLabel: { where: WHERE } }, env)
          : withSecretFile('identity.txt', `${request.identity.reveal().trim()}\n`, (identityFile) =>
              runRestore({ ...withSecrets, identityFile, identityLabel: { identity: `the identity given in the request (${(given as { recipients: string[] }).recipients.map(shortRecipient).join(', ')})`, where: WHERE } }, env),
            );
      });
    const scrub = scrubber(request.identity, request.passphrase);
    void run().then(
      (outcome) => {
        job.succeeded(`restored ${outcome.restored.map((m) => m.id).join(' + ')} into ${outcome.into}${outcome.replay ? ` and replayed ${outcome.replay.transactions} transactions` : ''}`, outcome.restored[0]?.id);
        log.info({ job: job.record.id, into: outcome.into }, 'restore through the API completed');
      },
      (err: unknown) => {
        const message = scrub(messageOf(err));
        const hint = err instanceof AgentError && err.hint !== undefined ? scrub(err.hint) : undefined;
        job.failed(new AgentError(err instanceof AgentError ? err.kind : 'storage', message, hint === undefined ? {} : { hint }));
        log.error({ job: job.record.id, error: message }, 'restore through the API failed');
        deps.bus.emit('daemon:problem', { database: source.name, what: 'restore through the API', message: brief(message) });
      },
    );
    return job.record;
  };
}
