/**
 * Binlog v4 event framing, pure. A binlog file is a 4-byte magic (`\xfe bin`) followed by events;
 * every event starts with a 19-byte header: timestamp (u32), type (u8), server id (u32), event
 * size (u32, whole event incl. header and checksum), end position (u32), flags (u16). Only headers
 * and three bodies are read: the format description (checksum algorithm), GTID (domain, sequence)
 * and rotate (next file). See docs/FORMAT.md and the MariaDB knowledge base, "Binary Log Events".
 */

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
export const HEADER_SIZE = 19;

export const EventType = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  HEARTBEAT: 27,
  GTID: 162,
  GTID_LIST: 163,
} as const;

export interface BinlogEvent {
  /** Offset of the event's first byte in its file (= the server's binlog position). */
  position: number;
  /** Offset just past the event: where the next event starts. */
  end: number;
  type: number;
  /** Seconds since the epoch, as the server stamped it (1-second resolution). */
  timestamp: number;
  serverId: number;
  /** GTID events: `domain-server-sequence`. */
  gtid?: { domain: number; serverId: number; sequence: bigint };
  /** Rotate events: the file the server continues in. */
  rotateTo?: string;
  /** Format description events: the checksum algorithm of the file's events (0 none, 1 CRC32). */
  checksumAlg?: number;
}

export class BinlogFormatError extends Error {
  override name = 'BinlogFormatError';
}

/**
 * Finds complete events in the bytes of one binlog file as they arrive. Feed it consecutive
 * buffers with `push(bytes)`; it returns every event that is now complete and keeps (a copy of) the
 * partial tail, so the caller may reuse its buffer.
 * `startAt` > 0 starts on a known event boundary (resuming an archived file) with the checksum
 * algorithm given.
 */
export class EventScanner {
  #buffer: Buffer = Buffer.alloc(0);
  /** File offset of #buffer[0]. */
  #offset: number;
  #checksumAlg: number;

  constructor(startAt = 0, checksumAlg = 1) {
    this.#offset = startAt;
    this.#checksumAlg = checksumAlg;
  }

  /** Offset up to which bytes were consumed as complete events (or the magic). */
  get completeEnd(): number {
    return this.#offset;
  }

  get checksumAlg(): number {
    return this.#checksumAlg;
  }

  push(bytes: Buffer): BinlogEvent[] {
    this.#buffer = this.#buffer.length === 0 ? bytes : Buffer.concat([this.#buffer, bytes]);
    const events: BinlogEvent[] = [];
    let at = 0;
    if (this.#offset === 0) {
      if (this.#buffer.length < 4) return events;
      if (!this.#buffer.subarray(0, 4).equals(BINLOG_MAGIC)) throw new BinlogFormatError('not a binlog file: the magic number is missing');
      at = 4;
    }
    while (this.#buffer.length - at >= HEADER_SIZE) {
      const size = this.#buffer.readUInt32LE(at + 9);
      if (size < HEADER_SIZE) throw new BinlogFormatError(`event at ${this.#offset + at} has an impossible size ${size}`);
      if (this.#buffer.length - at < size) break;
      events.push(this.#decode(this.#buffer.subarray(at, at + size), this.#offset + at));
      at += size;
    }
    this.#offset += at;
    // Keep a copy of the partial tail: the caller may reuse the buffer it pushed.
    this.#buffer = at === this.#buffer.length ? Buffer.alloc(0) : Buffer.from(this.#buffer.subarray(at));
    return events;
  }

  #decode(bytes: Buffer, position: number): BinlogEvent {
    const event: BinlogEvent = {
      position,
      end: position + bytes.length,
      type: bytes.readUInt8(4),
      timestamp: bytes.readUInt32LE(0),
      serverId: bytes.readUInt32LE(5),
    };
    const checksumBytes = () => (this.#checksumAlg === 0 ? 0 : 4);
    if (event.type === EventType.FORMAT_DESCRIPTION) {
      // The body ends with the checksum algorithm (1 byte) and the event's own checksum (4 bytes).
      const alg = bytes.readUInt8(bytes.length - 5);
      this.#checksumAlg = alg === 0 ? 0 : 1;
      event.checksumAlg = this.#checksumAlg;
    } else if (event.type === EventType.GTID && bytes.length >= HEADER_SIZE + 12) {
      event.gtid = { sequence: bytes.readBigUInt64LE(HEADER_SIZE), domain: bytes.readUInt32LE(HEADER_SIZE + 8), serverId: event.serverId };
    } else if (event.type === EventType.ROTATE && bytes.length >= HEADER_SIZE + 8) {
      event.rotateTo = bytes.subarray(HEADER_SIZE + 8, bytes.length - checksumBytes()).toString('utf8');
    }
    return event;
  }
}

export function formatGtid(gtid: { domain: number; serverId: number; sequence: bigint }): string {
  return `${gtid.domain}-${gtid.serverId}-${gtid.sequence}`;
}

/** A GTID position: per replication domain, the last GTID (MariaDB's `gtid_binlog_pos` format). */
export type GtidPosition = Map<number, { serverId: number; sequence: bigint }>;

export function parseGtidPosition(text: string): GtidPosition {
  const position: GtidPosition = new Map();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a MariaDB GTID (domain-server-sequence)`);
    position.set(Number(m[1]), { serverId: Number(m[2]), sequence: BigInt(m[3] as string) });
  }
  return position;
}

export function formatGtidPosition(position: GtidPosition): string {
  return [...position.entries()]
    .sort(([a], [b]) => a - b)
    .map(([domain, g]) => `${domain}-${g.serverId}-${g.sequence}`)
    .join(',');
}

/** Does `position` already contain the transaction `gtid` (same domain, sequence at or past it)? */
export function positionIncludes(position: GtidPosition, gtid: { domain: number; sequence: bigint }): boolean {
  const at = position.get(gtid.domain);
  return at !== undefined && at.sequence >= gtid.sequence;
}
