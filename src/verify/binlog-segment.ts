import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { BINLOG_MAGIC, EventType, HEADER_SIZE } from '../binlog/events.ts';

/**
 * Reads the bytes of one archived binlog segment (decompressed, decrypted) as they flow by and
 * checks that they are a clean sequence of events: the magic at a file's start, every event's
 * size possible, its end position (the header's next-position field) equal to where the next
 * event starts, its CRC-32 valid when the file's format description says events carry one, and
 * the last event ending exactly at the segment's end. Only headers and the format description
 * are kept; a row event of megabytes is checksummed as it passes.
 *
 * The CRC-32 of a format description event is computed with its in-use flag (bit 0 of the
 * flags, byte 17 of the event) clear: the server sets that flag in the file it is writing after
 * computing the checksum, as mariadb-binlog knows.
 */

const FLAGS_OFFSET = 17;
const IN_USE = 0x01;

export class SegmentFormatError extends Error {
  override name = 'SegmentFormatError';
}

export class BinlogSegmentScanner extends Writable {
  /** File offset of the next byte expected. */
  #position: number;
  readonly #end: number;
  #checksumAlg: number;
  events = 0;
  bytes = 0;
  #header: Buffer = Buffer.alloc(0);
  /** The event being read: its size, bytes still to come, the CRC so far, its last 4 bytes. */
  #event: { position: number; size: number; left: number; crc: number; tail: Buffer; whole: Buffer[] | undefined } | undefined;
  #magic: Buffer = Buffer.alloc(0);

  /** `start`/`end`: the segment's byte range in its file; `checksumAlg` of the file (from its first segment), when the segment does not start at 0. */
  constructor(start: number, end: number, checksumAlg = 1) {
    super();
    this.#position = start;
    this.#end = end;
    this.#checksumAlg = checksumAlg;
  }

  /** The file's checksum algorithm as last seen (0 none, 1 CRC-32): the next segment of the file starts with it. */
  get checksumAlg(): number {
    return this.#checksumAlg;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      this.bytes += chunk.length;
      this.#take(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#event || this.#header.length > 0 || (this.#position < 4 && this.#magic.length > 0)) {
      callback(new SegmentFormatError(`the segment ends inside the event at ${this.#event?.position ?? this.#position}: it is cut short`));
    } else if (this.#position !== this.#end) {
      callback(new SegmentFormatError(`its events end at ${this.#position}, the segment's range at ${this.#end}`));
    } else {
      callback();
    }
  }

  #take(bytes: Buffer): void {
    let at = 0;
    if (this.#position === 0) {
      const take = Math.min(BINLOG_MAGIC.length - this.#magic.length, bytes.length);
      this.#magic = Buffer.concat([this.#magic, bytes.subarray(0, take)]);
      at = take;
      if (this.#magic.length < BINLOG_MAGIC.length) return;
      if (!this.#magic.equals(BINLOG_MAGIC)) throw new SegmentFormatError('it does not start with the binlog magic number');
      this.#position = BINLOG_MAGIC.length;
    }
    while (at < bytes.length) {
      if (!this.#event) {
        const take = Math.min(HEADER_SIZE - this.#header.length, bytes.length - at);
        this.#header = this.#header.length === 0 && take === HEADER_SIZE ? bytes.subarray(at, at + take) : Buffer.concat([this.#header, bytes.subarray(at, at + take)]);
        at += take;
        if (this.#header.length < HEADER_SIZE) return;
        this.#startEvent(Buffer.from(this.#header));
        this.#header = Buffer.alloc(0);
        if (this.#event && (this.#event as { left: number }).left === 0) this.#finishEvent();
        continue;
      }
      const event = this.#event;
      const take = Math.min(event.left, bytes.length - at);
      const part = bytes.subarray(at, at + take);
      at += take;
      // The last 4 bytes are the checksum: everything before them goes into the CRC.
      const summed = Math.max(0, Math.min(take, event.left - 4));
      if (summed > 0) event.crc = crc32(part.subarray(0, summed), event.crc);
      if (summed < take) event.tail = Buffer.concat([event.tail, part.subarray(summed)]);
      event.whole?.push(Buffer.from(part));
      event.left -= take;
      if (event.left === 0) this.#finishEvent();
    }
  }

  #startEvent(header: Buffer): void {
    const position = this.#position;
    const type = header.readUInt8(4);
    const size = header.readUInt32LE(9);
    const next = header.readUInt32LE(13);
    if (size < HEADER_SIZE) throw new SegmentFormatError(`the event at ${position} has an impossible size ${size}`);
    if (position + size > this.#end) throw new SegmentFormatError(`the event at ${position} (${size} bytes) runs past the segment's end ${this.#end}`);
    if (next !== (position + size) % 2 ** 32) throw new SegmentFormatError(`the event at ${position} says the next one starts at ${next}, but it ends at ${position + size}`);
    const fde = type === EventType.FORMAT_DESCRIPTION;
    const summedHeader = fde ? Buffer.from(header) : header;
    if (fde) summedHeader[FLAGS_OFFSET] = (summedHeader[FLAGS_OFFSET] ?? 0) & ~IN_USE;
    const headerSummed = Math.min(HEADER_SIZE, size - 4);
    this.#event = {
      position,
      size,
      left: size - HEADER_SIZE,
      crc: crc32(summedHeader.subarray(0, Math.max(0, headerSummed))),
      tail: headerSummed < HEADER_SIZE ? Buffer.from(header.subarray(headerSummed)) : Buffer.alloc(0),
      whole: fde ? [Buffer.from(header)] : undefined,
    };
  }

  #finishEvent(): void {
    const event = this.#event;
    if (!event) return;
    if (event.whole) {
      // A format description: its second-last 5 bytes hold the checksum algorithm of the file.
      const body = Buffer.concat(event.whole);
      this.#checksumAlg = body.readUInt8(body.length - 5) === 0 ? 0 : 1;
    }
    if (this.#checksumAlg === 1) {
      if (event.size < HEADER_SIZE + 4) throw new SegmentFormatError(`the event at ${event.position} is too short for its checksum`);
      const stored = event.tail.readUInt32LE(0);
      if (stored !== event.crc >>> 0) throw new SegmentFormatError(`the event at ${event.position} fails its CRC-32 (stored ${stored.toString(16)}, computed ${(event.crc >>> 0).toString(16)})`);
    }
    this.#position = event.position + event.size;
    this.events += 1;
    this.#event = undefined;
  }
}
