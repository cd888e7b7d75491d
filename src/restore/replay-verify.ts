import type { Archive } from '../binlog/archive.ts';
import { EventScanner } from '../binlog/events.ts';
import type { SegmentManifest, SegmentRef } from '../binlog/segments.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { EncryptionRecord } from '../catalog/manifest.ts';
import { AgePassphraseError } from '../pipeline/age-passphrase.ts';
import { isAgeFailure } from '../pipeline/encryption.ts';
import { decryptMessage, explainDecryptFailure, isWrongKey, type Decryption } from './decrypt.ts';
import { verifyObject } from './fetch.ts';
import type { PitrPlan, PitrTarget } from './pitr.ts';
import { segmentBytes } from './pitr.ts';
import { isQueryEvent, isRowsEvent, isStatementEnd, TABLE_MAP } from './row-events.ts';

/**
 * Before a point-in-time restore writes anything, every binlog segment the replay will read is
 * read once: size and SHA-256 checked against its manifest (a corrupt segment found after the
 * base is applied would leave the target at the base), and the largest statement the replay will
 * send measured, so the target's max_allowed_packet can be checked first too.
 */

/**
 * A corrupt compressed segment usually fails in the decompressor before its digest completes:
 * check the stored bytes of each segment read, and report a mismatch as the cause if there is one.
 */
async function nameCorruption(storage: StorageDriver, archive: Archive, segments: readonly SegmentRef[], err: unknown, decryption: Decryption): Promise<AgentError> {
  if (isWrongKey(err) || (err instanceof AgePassphraseError && err.reason !== 'damaged')) {
    const encrypted = await firstEncrypted(archive, segments);
    if (encrypted) return explainDecryptFailure(err, encrypted, decryption, 'point-in-time restore: read the binlog archive') ?? new AgentError('refused', messageOf(err));
  }
  for (const ref of segments) {
    const manifest = await archive.manifest(ref);
    const found = await verifyObject(storage, { ...manifest.object, role: 'data' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (found instanceof AgentError && found.kind === 'integrity') {
      return new AgentError('integrity', `point-in-time restore: binlog segment ${found.message}; nothing was written`, {
        hint: 'the binlog archive is damaged there: choose a target before this segment, or restore a base backup without --to-time',
        cause: found,
      });
    }
  }
  if (isAgeFailure(err)) {
    return new AgentError('integrity', `point-in-time restore: decrypt the binlog archive: ${decryptMessage(err)}; nothing was written`, {
      hint: 'a binlog segment is damaged (truncated or altered): choose a target before it, or restore a base backup without --to-time',
      cause: err,
    });
  }
  return err instanceof AgentError ? err : new AgentError('storage', `read binlog for the replay: ${messageOf(err)}`, { cause: err });
}

/** The encryption of the first encrypted segment among `segments` (the recipients to name). */
async function firstEncrypted(archive: Archive, segments: readonly SegmentRef[]): Promise<EncryptionRecord | undefined> {
  for (const ref of segments) {
    const manifest = await archive.manifest(ref);
    if (manifest.encryption) return manifest.encryption;
  }
  return undefined;
}

/** Pure: does this segment hold the target (so no later segment is read)? */
export function segmentReachesTarget(segment: Pick<SegmentManifest, 'lastEventAt' | 'gtidLast'>, target: PitrTarget): boolean {
  if (target.kind === 'time') return Date.parse(segment.lastEventAt) > Math.floor(target.at.getTime() / 1000) * 1000;
  for (const part of (segment.gtidLast ?? '').split(',')) {
    const [domain, , sequence] = part.trim().split('-');
    if (Number(domain) === target.gtid.domain && sequence !== undefined && BigInt(sequence) >= target.gtid.sequence) return true;
  }
  return false;
}

/**
 * Pure: the bytes mariadb-binlog sends the server for one statement: a row-event group (table
 * maps to the event ending the statement) goes as one BINLOG '<base64>' statement, 76-column lines.
 */
export class StatementSizer {
  largest = 0;
  #group = 0;

  event(type: number, bytes: Buffer): void {
    if (type === TABLE_MAP || isRowsEvent(type)) {
      this.#group += bytes.length;
      if (isRowsEvent(type) && isStatementEnd(bytes)) this.#close();
    } else if (isQueryEvent(type)) {
      this.largest = Math.max(this.largest, bytes.length);
    }
  }

  #close(): void {
    const base64 = Math.ceil(this.#group / 3) * 4;
    this.largest = Math.max(this.largest, base64 + Math.ceil(base64 / 76) + 64);
    this.#group = 0;
  }
}

export async function verifyReplay(
  storage: StorageDriver,
  archive: Archive,
  plan: PitrPlan,
  target: PitrTarget,
  decryption: Decryption,
  signal?: AbortSignal,
): Promise<{ segments: number; largestStatement: number }> {
  const sizer = new StatementSizer();
  const cancel = signal ?? new AbortController().signal;
  let read = 0;
  const files = [...new Set(plan.segments.map((s) => s.file))];
  for (const file of files) {
    const segments: SegmentRef[] = [];
    let reached = false;
    for (const ref of plan.segments.filter((s) => s.file === file)) {
      segments.push(ref);
      if (segmentReachesTarget(await archive.manifest(ref), target)) {
        reached = true;
        break;
      }
    }
    const from = file === plan.from.file ? plan.from.position : 0;
    const scanner = new EventScanner(0);
    let held: Buffer = Buffer.alloc(0);
    let passed = 0;
    try {
      for await (const chunk of segmentBytes(storage, archive, segments, cancel, decryption)) {
        held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
        for (const event of scanner.push(chunk)) {
          if (event.position >= from) sizer.event(event.type, held.subarray(event.position - passed, event.end - passed));
        }
        held = held.subarray(scanner.completeEnd - passed);
        passed = scanner.completeEnd;
      }
    } catch (err) {
      throw await nameCorruption(storage, archive, segments, err, decryption);
    }
    read += segments.length;
    if (reached) break;
  }
  return { segments: read, largestStatement: sizer.largest };
}
