// Builds synthetic binlog files for the pure tests: magic, then v4 events with a 19-byte header
// and a CRC32-sized trailer (the scanner never checks the checksum, only frames events).
import { BINLOG_MAGIC, EventType } from '../../src/binlog/events.ts';

export interface Spec {
  type: number;
  timestamp: number;
  serverId?: number;
  body?: Buffer;
}

export function event(spec: Spec, position: number, checksum = true): Buffer {
  const body = spec.body ?? Buffer.alloc(8);
  const size = 19 + body.length + (checksum ? 4 : 0);
  const header = Buffer.alloc(19);
  header.writeUInt32LE(spec.timestamp, 0);
  header.writeUInt8(spec.type, 4);
  header.writeUInt32LE(spec.serverId ?? 1, 5);
  header.writeUInt32LE(size, 9);
  header.writeUInt32LE(position + size, 13);
  return Buffer.concat([header, body, Buffer.alloc(checksum ? 4 : 0)]);
}

export const fde = (timestamp: number, checksumAlg = 1): Spec => {
  const body = Buffer.alloc(2 + 50 + 4 + 1 + 10 + 1);
  body.writeUInt16LE(4, 0);
  body.writeUInt8(checksumAlg, body.length - 1);
  return { type: EventType.FORMAT_DESCRIPTION, timestamp, body };
};

export const gtid = (timestamp: number, domain: number, sequence: number, serverId = 1): Spec => {
  const body = Buffer.alloc(13);
  body.writeBigUInt64LE(BigInt(sequence), 0);
  body.writeUInt32LE(domain, 8);
  return { type: EventType.GTID, timestamp, serverId, body };
};

export const query = (timestamp: number, size = 40): Spec => ({ type: EventType.QUERY, timestamp, body: Buffer.alloc(size, 0x61) });
export const xid = (timestamp: number): Spec => ({ type: EventType.XID, timestamp });
export const rotate = (timestamp: number, next: string): Spec => {
  const body = Buffer.alloc(8 + next.length);
  body.writeBigUInt64LE(4n, 0);
  body.write(next, 8);
  return { type: EventType.ROTATE, timestamp, body };
};

/** A whole file: magic + events; returns the bytes and each event's [position, end). */
export function binlogFile(specs: Spec[]): { bytes: Buffer; bounds: [number, number][] } {
  const parts: Buffer[] = [BINLOG_MAGIC];
  const bounds: [number, number][] = [];
  let at = 4;
  // The format description decides the checksum of the others; the builder always writes CRC32-sized trailers.
  for (const spec of specs) {
    const bytes = event(spec, at, true);
    bounds.push([at, at + bytes.length]);
    parts.push(bytes);
    at += bytes.length;
  }
  return { bytes: Buffer.concat(parts), bounds };
}

/** Splits bytes at pseudo-random points (deterministic), to exercise partial events. */
export function chunks(bytes: Buffer, seed = 7): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  let x = seed;
  while (at < bytes.length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % 37);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}
