import { Transform, type TransformCallback } from 'node:stream';

/**
 * Drops the `SET @@session.gtid_seq_no=N` and `SET @@session.server_id=N` lines mariadb-binlog
 * prints for each transaction, so the target gives replayed transactions its own GTIDs, as it did
 * the base's statements. Replaying the source's GTIDs into a server that has written its own in
 * the same domain breaks `gtid_strict_mode` (out-of-order sequence number, after the base is
 * applied), and numbering them as the source did would mix two servers' sequences in one binlog.
 *
 * Only lines in the preamble mariadb-binlog writes right after its `# ... GTID d-s-n` comment line
 * are touched, and only when they match exactly; every other byte passes through unchanged.
 * Memory is bounded: a line is held only while it may still be one of those short lines.
 */

const GTID_COMMENT = /^#\d{6}\s+\d{1,2}:\d\d:\d\d server id \d+\s+end_log_pos \d+ .*\tGTID \d+-\d+-\d+/;
const STRIPPED = /^\/\*M!100001 SET @@session\.(?:gtid_seq_no|server_id)=\d+\*\/\/\*!\*\/;\r?$/;
const PREAMBLE = /^\/\*M!\d+ SET @@session\./;
/** Longer lines are none of the above: they stream through without being held. */
const MAX_HELD = 512;

export class GtidStrip extends Transform {
  #line: Buffer[] = [];
  #heldBytes = 0;
  /** The current line is being held (it started short enough to be examined). */
  #holding = true;
  #preamble = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let at = 0;
    while (at < chunk.length) {
      const newline = chunk.indexOf(0x0a, at);
      const end = newline < 0 ? chunk.length : newline + 1;
      const piece = chunk.subarray(at, end);
      at = end;
      if (!this.#holding) {
        this.push(piece);
      } else {
        this.#line.push(piece);
        this.#heldBytes += piece.length;
        if (newline < 0 && this.#heldBytes > MAX_HELD) {
          this.push(Buffer.concat(this.#line));
          this.#line = [];
          this.#heldBytes = 0;
          this.#holding = false;
          this.#preamble = false;
        }
      }
      if (newline >= 0) {
        if (this.#holding) this.#examine(Buffer.concat(this.#line));
        else this.#preamble = false;
        this.#line = [];
        this.#heldBytes = 0;
        this.#holding = true;
      }
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#line.length > 0) this.push(Buffer.concat(this.#line));
    callback();
  }

  #examine(line: Buffer): void {
    const text = line.toString('latin1').replace(/\n$/, '');
    if (GTID_COMMENT.test(text)) {
      this.#preamble = true;
    } else if (this.#preamble && STRIPPED.test(text)) {
      return;
    } else if (!(this.#preamble && PREAMBLE.test(text))) {
      this.#preamble = false;
    }
    this.push(line);
  }
}
