import { Transform, type TransformCallback } from 'node:stream';
import { BLOCK_SIZE } from './rechunk.ts';

/**
 * Holds back the end of a stream until `settled` resolves, and turns a rejection into a stream
 * error. Put after a child tool's stdout, it makes "the tool exited 0" a condition of the stream
 * ending: a tool that writes output and then fails never produces a clean end-of-stream, so no
 * storage driver ever commits its truncated output (a clean EOF is not success).
 */
export class ExitGate extends Transform {
  readonly #settled: Promise<unknown>;

  constructor(settled: Promise<unknown>) {
    super({ highWaterMark: BLOCK_SIZE });
    this.#settled = settled;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#settled.then(
      () => callback(),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }
}
