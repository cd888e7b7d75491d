import type { Logger } from 'pino';
import { describeUnreadable, hiddenNewer } from '../catalog/catalog.ts';
import { listBackups, type ListOptions } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { restoreChain } from '../restore/chain.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { passedAtLeast } from './record.ts';
import { storeRecord } from './record-store.ts';
import type { VerifyDepth, VerifyOutcome } from './types.ts';
import { verifyBackup } from './verify-backup.ts';

/** What a daemon's `type: verify` schedule asks of one database entry. */
export interface EntryVerifyInput {
  config: AgentConfig;
  database: DatabaseConfig;
  storage: StorageDriver;
  catalog: ListOptions | undefined;
  depth: VerifyDepth;
  /** `latest`: the entry's newest backup; `new`: every backup that has not passed at `depth` or deeper. */
  backups: 'latest' | 'new';
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Pure: the backups a verify schedule takes from a listing (newest first) and the keys of its
 * records. `canDecrypt` says whether this host holds the key: an encrypted backup it cannot open
 * is verified only to its stored bytes (`objects`), so for `new` an `objects` record counts as
 * done for it (else it would be read again on every run).
 */
export function chooseForVerify(backups: readonly Manifest[], recordKeys: Iterable<string>, depth: VerifyDepth, which: 'latest' | 'new', canDecrypt = true): Manifest[] {
  const completed = backups.filter((b) => b.status === 'completed');
  if (which === 'latest') return completed.slice(0, 1);
  const keys = [...recordKeys];
  const passed = passedAtLeast(keys, depth);
  const passedObjects = passedAtLeast(keys, 'objects');
  return completed.filter((b) => !(passed.has(b.id) || (b.encryption && !canDecrypt && passedObjects.has(b.id))));
}

/**
 * The daemon's verification of one entry (a `type: verify` schedule): chooses the backups, verifies
 * each (with its chain) at `depth` as `agent verify` does, and stores each record beside its
 * backup. A manifest that cannot be read, or a chain that is broken, is a failed outcome, never a
 * silent skip; an error of the environment (the store, a tool) is thrown, and no record is written.
 */
export async function verifyEntry(input: EntryVerifyInput): Promise<VerifyOutcome[]> {
  const { storage, database, depth, signal } = input;
  const now = () => new Date().toISOString();
  const { backups, unreadable, objects } = await listBackups(storage, database.name, input.catalog ?? {});
  const failed = (backupId: string, message: string): VerifyOutcome => ({ database: database.name, backupId, depth, ok: false, problems: [{ backupId, message }], startedAt: now(), finishedAt: now() });
  const outcomes: VerifyOutcome[] = [];
  const decryption = { agePath: input.config.tools.age, identityFile: database.encryption?.identityFile, passphraseFile: database.encryption?.passphrase?.file };
  const canDecrypt = database.encryption?.identityFile !== undefined || database.encryption?.passphrase?.file !== undefined;
  const chosen = chooseForVerify(backups, objects.keys(), depth, input.backups, canDecrypt);
  if (input.backups === 'latest') {
    const hidden = hiddenNewer(unreadable, chosen[0]);
    if (hidden) outcomes.push(failed(hidden.id, `${describeUnreadable(hidden)}: it may be the newest backup`));
  } else {
    for (const bad of unreadable) outcomes.push(failed(bad.id, describeUnreadable(bad)));
  }
  for (const manifest of chosen) {
    let chain: Manifest[];
    try {
      chain = manifest.type === 'dump' ? [manifest] : restoreChain(manifest, backups, unreadable);
    } catch (err) {
      outcomes.push(failed(manifest.id, messageOf(err)));
      continue;
    }
    const report = await verifyBackup({ storage, database, manifest, chain, depth, decryption, config: input.config, logger: input.logger, signal });
    for (const note of report.notes) input.logger.warn({ database: database.name, backup: manifest.id, note }, 'verification note');
    await storeRecord(storage, report, manifest.version, signal);
    outcomes.push({ database: report.database, backupId: report.backupId, depth: report.depth, ok: report.ok, problems: report.problems, startedAt: report.startedAt, finishedAt: report.finishedAt });
  }
  return outcomes;
}
