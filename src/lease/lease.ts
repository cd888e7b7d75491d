import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { AgentError } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError, storageHintOption } from '../storage/errors.ts';

/**
 * A lease: a small object in the storage itself that says "this process is doing X until
 * expiresAt", so agents on different hosts that share a bucket see each other. Created with a
 * conditional create, refreshed and released with compare-and-swap on its version token (S3
 * If-Match, GCS ifGenerationMatch, local O_EXCL + rename under a per-key mutex): two contenders
 * never both win, and a takeover of a stale lease replaces only the exact version found stale.
 * On a store configured with `conditional_writes: false`, the driver emulates these by reading
 * and comparing, and the lease reads itself back after writing: that catches all but writers
 * racing within one round trip.
 */

export interface LeaseRecord {
  /** Unique per acquisition: host, pid and a random part. */
  owner: string;
  host: string;
  pid: number;
  /** What the holder is doing: "prune", "backup", "binlog capture". */
  purpose: string;
  acquiredAt: string;
  expiresAt: string;
  /** A running backup's lease names it and, for an incremental, the parent it builds on. */
  backup?: { id: string; type: string; parent: string | null };
  /** Where `pid` means something: host name, kernel boot and pid namespace (absent when unknown). */
  machine?: string;
}

/** Owners of the leases this process holds now: acquired, not yet released. */
const heldHere = new Set<string>();

/**
 * This process's `machine`: a pid read from a lease can be checked only by a process on the same
 * host, in the same boot, in the same pid namespace (two containers may share a host name).
 */
export const THIS_MACHINE: string | undefined = (() => {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${hostname()}/${boot}/${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return undefined; // not Linux, or /proc hidden: no holder is ever judged gone early
  }
})();

/**
 * Pure but for the process table: the holder of a live lease is known to be gone when it ran on
 * this machine (same host, boot and pid namespace) and its pid no longer exists, as after a
 * kill -9, or it is this process and no holder here still holds it. A pid that was reused counts
 * as alive: the lease is then waited out (fail closed).
 */
export function holderIsGone(record: LeaseRecord, machine: string | undefined = THIS_MACHINE): boolean {
  if (machine === undefined || record.machine !== machine) return false;
  // This process: gone unless one of its holders still holds it (a release that failed on a dead
  // store leaves the object behind; the daemon's next capture must not be locked out by it).
  if (record.pid === process.pid) return !heldHere.has(record.owner);
  try {
    process.kill(record.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export interface LeaseOptions {
  key: string;
  purpose: string;
  /** What the lease guards, for messages: "database shop", "the binlog archive of shop". */
  subject: string;
  ttlMs: number;
  backup?: LeaseRecord['backup'];
  now?: () => Date;
}

export interface HeldLease {
  readonly key: string;
  readonly subject: string;
  readonly ttlMs: number;
  /** The record as last written. */
  readonly record: LeaseRecord;
  /** Re-writes the expiry (and `backup`, when given); rejects with a 'locked' AgentError when the lease was lost. */
  refresh(update?: Pick<LeaseRecord, 'backup'>): Promise<void>;
  /** Removes the lease if it is still this holder's version; a lease already taken over is left alone. */
  release(): Promise<void>;
}

/** Parses a lease object; throws on anything that is not one. */
export function parseLease(data: Buffer): LeaseRecord {
  const value = JSON.parse(data.toString('utf8')) as Partial<LeaseRecord> | null;
  if (!value || typeof value.owner !== 'string' || typeof value.expiresAt !== 'string' || Number.isNaN(Date.parse(value.expiresAt))) {
    throw new Error('not a lease: owner or expiresAt missing');
  }
  return value as LeaseRecord;
}

/** Pure: a lease is live until its expiry; after that its holder is presumed dead or hung. */
export function isLive(record: LeaseRecord, now: Date): boolean {
  return Date.parse(record.expiresAt) >= now.getTime();
}

function storageError(action: string, storage: StorageDriver, err: unknown): AgentError {
  return new AgentError('storage', `${action} in ${storage.location}: ${describeStorageError(err)}`, { ...storageHintOption(err), cause: err });
}

export async function acquireLease(storage: StorageDriver, options: LeaseOptions): Promise<HeldLease> {
  const now = options.now ?? (() => new Date());
  const { key, subject } = options;
  const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  const fresh = (): LeaseRecord => {
    const at = now();
    return {
      owner,
      host: hostname(),
      pid: process.pid,
      purpose: options.purpose,
      acquiredAt: at.toISOString(),
      expiresAt: new Date(at.getTime() + options.ttlMs).toISOString(),
      ...(options.backup ? { backup: options.backup } : {}),
      ...(THIS_MACHINE ? { machine: THIS_MACHINE } : {}),
    };
  };

  // Counted as held here before the first write: another holder in this process that reads the
  // object between our write and our return must see a live holder, not a gone one.
  heldHere.add(owner);
  try {
    return await acquire();
  } catch (err) {
    heldHere.delete(owner);
    throw err;
  }

  async function acquire(): Promise<HeldLease> {
    let seen: LeaseRecord | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const mine = fresh();
      const body = Buffer.from(JSON.stringify(mine));
      let version: string | undefined;
      try {
        const current = await storage.getVersioned(key);
        if (current) {
          seen = tryParse(current.data);
          if (seen && isLive(seen, now()) && !holderIsGone(seen)) throw lockedError(subject, seen);
          // Stale (its owner died or hung, or was killed on this machine) or not a lease at all: replace exactly the version
          // found, so of two contenders taking it over only one succeeds.
          version = await storage.putIfMatch(key, body, current.version);
        } else {
          version = await storage.putIfAbsent(key, body);
        }
      } catch (err) {
        if (err instanceof AgentError) throw err;
        throw storageError(`take the lease of ${subject}`, storage, err);
      }
      if (version === undefined) continue; // another contender moved first: look again
      if (!storage.conditionalWrites && !(await readBackIsMine(storage, key, owner))) continue;
      return holder(storage, options, mine, version, now);
    }
    throw lockedError(subject, seen);
  }
}

function tryParse(data: Buffer): LeaseRecord | undefined {
  try {
    return parseLease(data);
  } catch (err) {
    if (err instanceof SyntaxError || (err instanceof Error && err.message.startsWith('not a lease'))) return undefined;
    throw err;
  }
}

/** On a store that ignores conditional writes: did our write survive a racing one? */
async function readBackIsMine(storage: StorageDriver, key: string, owner: string): Promise<boolean> {
  const back = await storage.getVersioned(key);
  return back !== undefined && tryParse(back.data)?.owner === owner;
}

function holder(storage: StorageDriver, options: LeaseOptions, first: LeaseRecord, firstVersion: string, now: () => Date): HeldLease {
  let record = first;
  let version = firstVersion;
  return {
    key: options.key,
    subject: options.subject,
    ttlMs: options.ttlMs,
    get record() {
      return record;
    },
    async refresh(update) {
      const next: LeaseRecord = { ...record, ...(update ?? {}), expiresAt: new Date(now().getTime() + options.ttlMs).toISOString() };
      let written: string | undefined;
      try {
        written = await storage.putIfMatch(options.key, Buffer.from(JSON.stringify(next)), version);
        if (written !== undefined && !storage.conditionalWrites && !(await readBackIsMine(storage, options.key, record.owner))) written = undefined;
      } catch (err) {
        throw storageError(`refresh the lease of ${options.subject}`, storage, err);
      }
      if (written === undefined) {
        const current = await storage.getVersioned(options.key).catch(() => undefined);
        const by = current ? tryParse(current.data) : undefined;
        throw new AgentError('locked', `lost the lease of ${options.subject}${by ? ` to ${describeHolder(by)}` : ': it was removed as stale'}`, {
          hint: 'the lease expired before it could be refreshed (a stalled process or a slow store): the work was stopped',
        });
      }
      version = written;
      record = next;
    },
    async release() {
      heldHere.delete(record.owner);
      try {
        await storage.deleteIfMatch(options.key, version);
      } catch (err) {
        throw storageError(`release the lease of ${options.subject}`, storage, err);
      }
    },
  };
}

export function describeHolder(held: LeaseRecord): string {
  return `${held.purpose} by ${held.host} (pid ${held.pid}) since ${held.acquiredAt}`;
}

export function lockedError(subject: string, held: LeaseRecord | undefined): AgentError {
  return new AgentError('locked', `${subject} is locked: ${held ? describeHolder(held) : 'another process'}`, {
    hint: held ? `wait for it to finish; if that process is gone, the lock expires at ${held.expiresAt}` : 'wait a moment and try again',
  });
}
