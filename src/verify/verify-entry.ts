import type { Logger } from 'pino';
import { describeUnreadable, hiddenNewer } from '../catalog/catalog.ts';
import { listBackups, type CatalogListing, type ListOptions } from '../catalog/listing.ts';
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
  /** Depth restore: replay the archived binlog past each backup up to the last recoverable time. */
  replayBinlog?: boolean;
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

/** Which backups of an entry to verify: the newest, every one, or (a daemon's `backups: new`) every one not passed at `depth`. */
export type VerifyChoice = { which: 'latest' } | { which: 'all' } | { which: 'new'; depth: VerifyDepth; canDecrypt: boolean };

/** A backup to verify with its restore chain (full first), or why it cannot be: a verdict on the catalog, never a silent skip. */
export interface VerifySelection {
  chosen: { manifest: Manifest; chain: Manifest[] }[];
  failures: { backupId: string; message: string }[];
}

/** Pure: a backup's restore chain from the listing (a dump alone), or the failure that says why the chain is broken. */
export function chainFor(manifest: Manifest, listing: Pick<CatalogListing, 'backups' | 'unreadable'>): { manifest: Manifest; chain: Manifest[] } | { backupId: string; message: string } {
  try {
    return { manifest, chain: manifest.type === 'dump' ? [manifest] : restoreChain(manifest, listing.backups, listing.unreadable) };
  } catch (err) {
    return { backupId: manifest.id, message: messageOf(err) };
  }
}

/**
 * Pure: the one selection `agent verify` and the daemon's verify schedules share. An unreadable
 * manifest is a failure: for `latest` only when it may hide the newest backup, otherwise always.
 */
export function selectForVerify(listing: Pick<CatalogListing, 'backups' | 'unreadable'>, recordKeys: Iterable<string>, choice: VerifyChoice): VerifySelection {
  const failures: VerifySelection['failures'] = [];
  let manifests: readonly Manifest[];
  if (choice.which === 'latest') {
    manifests = chooseForVerify(listing.backups, [], 'objects', 'latest');
    const hidden = hiddenNewer(listing.unreadable, manifests[0]);
    if (hidden) failures.push({ backupId: hidden.id, message: `${describeUnreadable(hidden)}: it may be the newest backup` });
  } else {
    manifests = choice.which === 'all' ? listing.backups : chooseForVerify(listing.backups, recordKeys, choice.depth, 'new', choice.canDecrypt);
    for (const bad of listing.unreadable) failures.push({ backupId: bad.id, message: describeUnreadable(bad) });
  }
  const chosen: VerifySelection['chosen'] = [];
  for (const manifest of manifests) {
    const found = chainFor(manifest, listing);
    if ('chain' in found) chosen.push(found);
    else failures.push(found);
  }
  return { chosen, failures };
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
  const listing = await listBackups(storage, database.name, input.catalog ?? {});
  const failed = (backupId: string, message: string): VerifyOutcome => ({ database: database.name, backupId, depth, ok: false, problems: [{ backupId, message }], startedAt: now(), finishedAt: now() });
  const outcomes: VerifyOutcome[] = [];
  const decryption = { agePath: input.config.tools.age, identityFile: database.encryption?.identityFile, passphraseFile: database.encryption?.passphrase?.file };
  const canDecrypt = database.encryption?.identityFile !== undefined || database.encryption?.passphrase?.file !== undefined;
  const choice: VerifyChoice = input.backups === 'latest' ? { which: 'latest' } : { which: 'new', depth, canDecrypt };
  const { chosen, failures } = selectForVerify(listing, listing.objects.keys(), choice);
  for (const f of failures) outcomes.push(failed(f.backupId, f.message));
  for (const { manifest, chain } of chosen) {
    const report = await verifyBackup({ storage, database, manifest, chain, depth, replayBinlog: input.replayBinlog ?? false, decryption, config: input.config, logger: input.logger, signal });
    for (const note of report.notes) input.logger.warn({ database: database.name, backup: manifest.id, note }, 'verification note');
    await storeRecord(storage, report, manifest.version, signal);
    outcomes.push({ database: report.database, backupId: report.backupId, depth: report.depth, ok: report.ok, problems: report.problems, startedAt: report.startedAt, finishedAt: report.finishedAt });
  }
  return outcomes;
}
