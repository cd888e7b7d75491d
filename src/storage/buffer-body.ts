import { Readable } from 'node:stream';

/**
 * A put body whose bytes are all in memory (a manifest, a marker): a stream like any other to a
 * driver, but one the retrying driver can replay, so a small write is retried after a transient
 * failure where a streamed body (read once, then gone) cannot be.
 */
export class BufferBody extends Readable {
  readonly data: Buffer;
  #sent = false;

  constructor(data: Buffer | string) {
    super();
    this.data = Buffer.isBuffer(data) ? data : Buffer.from(data);
  }

  override _read(): void {
    if (!this.#sent && this.data.length > 0) this.push(this.data);
    this.#sent = true;
    this.push(null);
  }

  /** A fresh, unread body of the same bytes. */
  replay(): BufferBody {
    return new BufferBody(this.data);
  }
}

export function bufferBody(data: Buffer | string): BufferBody {
  return new BufferBody(data);
}
