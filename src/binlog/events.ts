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

/** The event types whose body is read: their bytes are kept whole while they arrive in pieces. */
const DECODED_TYPES: ReadonlySet<number> = new Set([EventType.FORMAT_DESCRIPTION, EventType.GTID, EventType.ROTATE]);

const EMPTY = Buffer.alloc(0);

/**
 * Finds complete events in the bytes of one binlog file as they arrive. Feed it consecutive
 * buffers with `push(bytes)`; it returns every event that is now complete, and the caller may
 * reuse its buffer. Events inside one pushed buffer are read in place; of an event that straddles
 * two pushes only the header is copied (the whole event for the few types whose body is read),
 * and the rest of it is counted, not kept: a row event of megabytes costs no memory, and a read
 * buffer is never concatenated with a partial tail.
 * `startAt` > 0 starts on a known event boundary (resuming an archived file) with the checksum
 * algorithm given.
 */
export class EventScanner {
  /** File offset of the first byte not yet framed into a complete event (the magic, or an event start). */
  #offset: number;
  #checksumAlg: number;
  /** The kept bytes of the magic or of the event straddling pushes: its header, or all of it for a decoded type. */
  #partial: Buffer = EMPTY;
  /** Bytes of the straddling event seen so far (kept or only counted); 0 between events. */
  #seen = 0;
  /** The straddling event's size once its header is read; 0 before. */
  #size = 0;

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
    const events: BinlogEvent[] = [];
    let at = 0;
    if (this.#offset === 0) {
      const take = Math.min(BINLOG_MAGIC.length - this.#partial.length, bytes.length);
      this.#partial = Buffer.concat([this.#partial, bytes.subarray(0, take)]);
      at = take;
      if (this.#partial.length < BINLOG_MAGIC.length) return events;
      if (!this.#partial.equals(BINLOG_MAGIC)) throw new BinlogFormatError('not a binlog file: the magic number is missing');
      this.#offset = BINLOG_MAGIC.length;
      this.#partial = EMPTY;
    }
    if (this.#seen > 0) at = this.#straddling(bytes, at, events);
    if (this.#seen > 0) return events;
    // Whole events inside `bytes`: read in place.
    while (bytes.length - at >= HEADER_SIZE) {
      const size = bytes.readUInt32LE(at + 9);
      if (size < HEADER_SIZE) throw new BinlogFormatError(`event at ${this.#offset} has an impossible size ${size}`);
      if (bytes.length - at < size) break;
      events.push(this.#decode(bytes.subarray(at, at + size), this.#offset, size));
      this.#offset += size;
      at += size;
    }
    if (at < bytes.length) this.#straddling(bytes, at, events);
    return events;
  }

  /**
   * Takes bytes from `at` for the event at #offset that did not (or does not) fit one push: keeps
   * its header (and all of a decoded type), counts the rest; emits it once complete. Returns
   * where it stopped reading `bytes`.
   */
  #straddling(bytes: Buffer, at: number, events: BinlogEvent[]): number {
    let i = at;
    if (this.#size === 0) {
      const take = Math.min(HEADER_SIZE - this.#partial.length, bytes.length - i);
      this.#partial = Buffer.concat([this.#partial, bytes.subarray(i, i + take)]);
      this.#seen += take;
      i += take;
      if (this.#partial.length < HEADER_SIZE) return i;
      this.#size = this.#partial.readUInt32LE(9);
      if (this.#size < HEADER_SIZE) throw new BinlogFormatError(`event at ${this.#offset} has an impossible size ${this.#size}`);
    }
    const take = Math.min(this.#size - this.#seen, bytes.length - i);
    if (DECODED_TYPES.has(this.#partial.readUInt8(4))) this.#partial = Buffer.concat([this.#partial, bytes.subarray(i, i + take)]);
    this.#seen += take;
    i += take;
    if (this.#seen < this.#size) return i;
    events.push(this.#decode(this.#partial, this.#offset, this.#size));
    this.#offset += this.#size;
    this.#partial = EMPTY;
    this.#seen = 0;
    this.#size = 0;
    return i;
  }

  /** `bytes` holds the event's header, and all of it for a decoded type; `size` is the whole event's. */
  #decode(bytes: Buffer, position: number, size: number): BinlogEvent {
    const event: BinlogEvent = {
      position,
      end: position + size,
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
