import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';

/**
 * Lets an inspection read the head of a stream the agent only sees compressed: a pass-through
 * over zstd's output that also decompresses it, on the side, until `headBytes` of plaintext have
 * been written to `inspect` (then the side decoder is dropped and `inspect` ended). The stream
 * itself passes on unchanged and is never held back by the side branch. When the stream is
 * shorter than `headBytes`, `inspect` sees all of it (and ends with it). A side decoder that fails
 * on the agent's own zstd output fails the stream: that output would not restore either.
 */
export class HeadTap extends Transform {
  readonly #inspect: Transform;
  readonly #headBytes: number;
  #decoder: zlib.ZstdDecompress | undefined;
  #seen = 0;
  #decoded: Promise<void>;
  #failed: Error | undefined;

  constructor(inspect: Transform, headBytes: number) {
    super();
    this.#inspect = inspect;
    this.#headBytes = headBytes;
    // What the inspection passes on is not needed: the stored stream is the compressed one.
    inspect.resume();
    // An inspection that fails fails the stream (it is not in the chain: nothing else listens).
    inspect.on('error', (err: Error) => this.destroy(err));
    const decoder = zlib.createZstdDecompress();
    this.#decoder = decoder;
    this.#decoded = new Promise<void>((resolve) => {
      decoder.on('data', (plain: Buffer) => {
        if (this.#decoder === undefined) return;
        const room = this.#headBytes - this.#seen;
        const take = plain.length > room ? plain.subarray(0, room) : plain;
        this.#seen += take.length;
        inspect.write(take);
        if (this.#seen >= this.#headBytes) this.#stop(resolve);
      });
      decoder.on('end', () => this.#stop(resolve));
      decoder.on('error', (err: Error) => {
        this.#failed = err;
        this.#stop(resolve);
      });
    });
  }

  #stop(resolve: () => void): void {
    const decoder = this.#decoder;
    if (decoder === undefined) return;
    this.#decoder = undefined;
    decoder.removeAllListeners('data');
    decoder.on('error', () => undefined);
    decoder.destroy();
    this.#inspect.end();
    resolve();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#failed) return callback(new Error(`the zstd output does not decode: ${this.#failed.message}`));
    this.#decoder?.write(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#decoder?.end();
    void this.#decoded.then(() => callback(this.#failed ? new Error(`the zstd output does not decode: ${this.#failed.message}`) : null));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#decoder?.destroy();
    this.#decoder = undefined;
    callback(err);
  }
}
