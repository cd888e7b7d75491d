import { Transform, type TransformCallback } from 'node:stream';
import type { BinlogCoordinates } from '../catalog/manifest.ts';

/**
 * Reads the binlog coordinates a dump records about its own snapshot, while the dump streams by.
 * `--master-data=2` puts the file/position comment in the first lines; MariaDB's `--gtid` puts the
 * GTID at the very end, MySQL's GTID_PURGED is at the start. So the scanner looks at a bounded
 * head and keeps a bounded tail: memory is constant, the data is never held back.
 */

const HEAD_LIMIT = 256 * 1024;
/** How much of a dump's head the coordinates need (the file/position comment, MySQL's GTID_PURGED). */
export const COORDINATES_HEAD_BYTES = HEAD_LIMIT;
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
  /** Called once when the head names the snapshot's file/position: the dump's snapshot exists by then. */
  #onPosition: (() => void) | undefined;

  constructor(options: { onPosition?: () => void } = {}) {
    super();
    this.#onPosition = options.onPosition;
  }

  /** The most recent chunks, just enough of them to cover TAIL_LIMIT bytes; never copied. */
  #recent: Buffer[] = [];
  #recentBytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#headBytes < HEAD_LIMIT) {
      const take = Buffer.from(chunk.subarray(0, HEAD_LIMIT - this.#headBytes));
      this.#head.push(take);
      this.#headBytes += take.length;
      if (this.#onPosition && positionPattern.test(Buffer.concat(this.#head).toString('utf8'))) {
        const call = this.#onPosition;
        this.#onPosition = undefined;
        call();
      }
    }
    this.#recent.push(chunk);
    this.#recentBytes += chunk.length;
    while (this.#recent.length > 1 && this.#recentBytes - (this.#recent[0]?.length ?? 0) >= TAIL_LIMIT) {
      this.#recentBytes -= this.#recent.shift()?.length ?? 0;
    }
    callback(null, chunk);
  }

  /** The coordinates seen; call after the stream has ended. */
  coordinates(): BinlogCoordinates | null {
    const recent = Buffer.concat(this.#recent);
    const tail = recent.subarray(Math.max(0, recent.length - TAIL_LIMIT));
    return parseDumpCoordinates(Buffer.concat(this.#head).toString('utf8'), tail.toString('utf8'));
  }
}
