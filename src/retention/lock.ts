import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { AgentError, messageOf } from '../errors.ts';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.ts';

/**
 * A lock kept in the storage itself, so two agents on different hosts that share a bucket never
 * prune the same database at once: an object `<database>/prune.lock` naming its owner and expiry,
 * created with a conditional write (local: O_EXCL, the lock file; S3: If-None-Match; GCS:
 * ifGenerationMatch=0). The owner refreshes it while working; an expired one is stale and taken
 * over. Where a store ignores conditional writes, reading the lock back after writing it catches
 * all but the closest races.
 */

export interface LockRecord {
  owner: string;
  host: string;
  pid: number;
  purpose: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface HeldLock {
  record: LockRecord;
  /** Re-writes the expiry; call well within the TTL. */
  refresh(): Promise<void>;
  release(): Promise<void>;
}

export function lockKey(database: string): string {
  return `${database}/prune.lock`;
}

async function readLock(storage: StorageDriver, key: string): Promise<LockRecord | undefined> {
  try {
    return JSON.parse(await text(await storage.get(key))) as LockRecord;
  } catch (err) {
    if (err instanceof StorageNotFoundError) return undefined;
    if (err instanceof SyntaxError) return { owner: 'unreadable', host: '?', pid: 0, purpose: '?', acquiredAt: '', expiresAt: '1970-01-01T00:00:00.000Z' };
    throw err;
  }
}

export interface AcquireOptions {
  database: string;
  purpose: string;
  ttlMs: number;
  now?: () => Date;
}

export async function acquireLock(storage: StorageDriver, options: AcquireOptions): Promise<HeldLock> {
  const now = options.now ?? (() => new Date());
  const key = lockKey(options.database);
  const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  const record = (): LockRecord => {
    const at = now();
    return {
      owner,
      host: hostname(),
      pid: process.pid,
      purpose: options.purpose,
      acquiredAt: at.toISOString(),
      expiresAt: new Date(at.getTime() + options.ttlMs).toISOString(),
    };
  };

  for (let attempt = 0; attempt < 3; attempt++) {
    // Look first: on a store that ignores conditional writes, putIfAbsent would overwrite a
    // live lock (s3rver, some S3-compatible stores).
    const existing = await readLock(storage, key);
    if (existing) {
      if (Date.parse(existing.expiresAt) >= now().getTime()) throw lockedError(options.database, existing);
      // Stale: its owner died or hung. Remove it and compete for a fresh one.
      await storage.delete(key);
    }
    const mine = record();
    let created: boolean;
    try {
      created = await storage.putIfAbsent(key, Buffer.from(JSON.stringify(mine)));
    } catch (err) {
      throw new AgentError('storage', `take the prune lock of ${options.database} in ${storage.location}: ${messageOf(err)}`, { cause: err });
    }
    if (created) {
      const check = await readLock(storage, key);
      if (check?.owner !== owner) break; // a store without conditional writes let another writer in
      return {
        record: mine,
        refresh: async () => {
          const current = await readLock(storage, key);
          if (current?.owner !== owner) throw new AgentError('locked', `lost the prune lock of ${options.database} to ${current?.owner ?? 'nobody'}`);
          const renewed = { ...record(), acquiredAt: mine.acquiredAt };
          await storage.put(key, Readable.from([Buffer.from(JSON.stringify(renewed))]), { contentType: 'application/json' });
        },
        release: async () => {
          const current = await readLock(storage, key);
          if (current?.owner === owner) await storage.delete(key);
        },
      };
    }
    const held = await readLock(storage, key);
    if (!held) continue; // released between the two calls: try again
    if (Date.parse(held.expiresAt) < now().getTime()) {
      // Stale: its owner died or hung. Remove it and compete for a fresh one.
      await storage.delete(key);
      continue;
    }
    throw lockedError(options.database, held);
  }
  const held = await readLock(storage, key);
  throw lockedError(options.database, held);
}

function lockedError(database: string, held: LockRecord | undefined): AgentError {
  const who = held ? `${held.purpose} by ${held.host} (pid ${held.pid}) since ${held.acquiredAt}` : 'another process';
  return new AgentError('locked', `database ${database} is locked: ${who}`, {
    hint: held
      ? `wait for it to finish; if that process is gone, the lock expires at ${held.expiresAt}`
      : 'wait a moment and try again',
  });
}
