import { Transform, type TransformCallback } from 'node:stream';
import type { BinlogCoordinates } from '../catalog/manifest.ts';

/**
 * Reads the binlog coordinates a dump records about its own snapshot, while the dump streams by.
 * `--master-data=2` puts the file/position comment in the first lines; MariaDB's `--gtid` puts the
 * GTID at the very end, MySQL's GTID_PURGED is at the start. So the scanner looks at a bounded
 * head and keeps a bounded tail: memory is constant, the data is never held back.
 */

const HEAD_LIMIT = 256 * 1024;
const TAIL_LIMIT = 16 * 1024;

const positionPattern =
  /CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)/;
const mariadbGtidPattern = /gtid_slave_pos='([^']*)'/g;
const mysqlGtidPattern = /SET @@GLOBAL\.GTID_PURGED=(?:\/\*!80000 '\+'\*\/ )?'([^']*)'/;

/** Pure: the coordinates named in a dump's head and tail text, or null when there are none. */
export function parseDumpCoordinates(head: string, tail: string): BinlogCoordinates | null {
  const position = positionPattern.exec(head);
  if (!position?.[1] || !position[2]) return null;
  // The last occurrence: the tool writes its line at the very end, after any table data.
  const last = (text: string) => [...text.matchAll(mariadbGtidPattern)].at(-1)?.[1];
  const gtid = last(tail) ?? last(head) ?? mysqlGtidPattern.exec(head)?.[1];
  return { file: position[1], position: Number(position[2]), gtid: gtid === undefined || gtid === '' ? null : gtid };
}

export class CoordinatesScanner extends Transform {
  #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#headBytes < HEAD_LIMIT) {
      const take = chunk.subarray(0, HEAD_LIMIT - this.#headBytes);
      this.#head.push(take);
      this.#headBytes += take.length;
    }
    this.#tail = chunk.length >= TAIL_LIMIT ? chunk.subarray(chunk.length - TAIL_LIMIT) : Buffer.concat([this.#tail, chunk]);
    if (this.#tail.length > TAIL_LIMIT) this.#tail = this.#tail.subarray(this.#tail.length - TAIL_LIMIT);
    // The tail may share memory with a chunk that is passed on; copy so it is not pinned.
    if (this.#tail.buffer === chunk.buffer) this.#tail = Buffer.from(this.#tail);
    callback(null, chunk);
  }

  /** The coordinates seen; call after the stream has ended. */
  coordinates(): BinlogCoordinates | null {
    return parseDumpCoordinates(Buffer.concat(this.#head).toString('utf8'), this.#tail.toString('utf8'));
  }
}
