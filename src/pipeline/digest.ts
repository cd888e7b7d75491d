import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BLOCK_SIZE } from './rechunk.ts';

/** A pass-through stage that counts bytes and computes SHA-256 of everything that passes. */
export class DigestStream extends Transform {
  #hash: Hash = createHash('sha256');
  #bytes = 0;
  #hex: string | undefined;

  constructor() {
    super({ highWaterMark: BLOCK_SIZE });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#hex = this.#hash.digest('hex');
    callback();
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The SHA-256 hex digest; available once the stream has ended. */
  get sha256(): string {
    if (this.#hex === undefined) throw new Error('digest read before the stream ended');
    return this.#hex;
  }
}

/** Counts bytes passing through and reports them (for progress bars). */
export class CountingStream extends Transform {
  bytes = 0;
  readonly #onProgress: ((bytes: number) => void) | undefined;

  constructor(onProgress?: (bytes: number) => void) {
    super({ highWaterMark: BLOCK_SIZE });
    this.#onProgress = onProgress;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#onProgress?.(this.bytes);
    callback(null, chunk);
  }
}
