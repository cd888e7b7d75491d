// HeadTap: the head of a stream the agent sees only compressed, decompressed on the side for an
// inspection (the dump's binlog coordinates), while the compressed stream passes unchanged.
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HeadTap } from '../../src/pipeline/head-tap.ts';

/** An inspection that keeps what it is given. */
function keeper(): { stage: Transform; seen: () => Buffer; ended: () => boolean } {
  const chunks: Buffer[] = [];
  let ended = false;
  const stage = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      ended = true;
      callback();
    },
  });
  return { stage, seen: () => Buffer.concat(chunks), ended: () => ended };
}

async function passThrough(tap: HeadTap, compressed: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces = [];
  for (let at = 0; at < compressed.length; at += 7000) pieces.push(compressed.subarray(at, at + 7000));
  await pipeline(Readable.from(pieces), tap, new Writable({ write: (chunk: Buffer, _e, cb) => (out.push(chunk), cb()) }));
  return Buffer.concat(out);
}

describe('HeadTap', () => {
  const plain = Buffer.concat([Buffer.from('-- MariaDB dump\nCHANGE MASTER TO MASTER_LOG_FILE=\'mysql-bin.000001\', MASTER_LOG_POS=42;\n'), Buffer.alloc(2_000_000, 'x'), randomBytes(100_000)]);
  const compressed = zlib.zstdCompressSync(plain);

  it('gives the inspection exactly the first headBytes of the plaintext, and passes the compressed stream unchanged', async () => {
    const inspect = keeper();
    const passed = await passThrough(new HeadTap(inspect.stage, 256 * 1024), compressed);
    expect(passed.equals(compressed)).toBe(true);
    expect(inspect.seen().equals(plain.subarray(0, 256 * 1024))).toBe(true);
    expect(inspect.ended()).toBe(true);
  });

  it('a stream shorter than the head reaches the inspection whole (its tail included) before the stream ends', async () => {
    const inspect = keeper();
    const small = Buffer.from("CHANGE MASTER TO MASTER_LOG_FILE='b.000002', MASTER_LOG_POS=7;\n-- SET GLOBAL gtid_slave_pos='0-1-9';\n");
    await passThrough(new HeadTap(inspect.stage, 256 * 1024), zlib.zstdCompressSync(small));
    expect(inspect.seen().equals(small)).toBe(true);
    expect(inspect.ended()).toBe(true);
  });

  it('output that does not decode fails the stream', async () => {
    const inspect = keeper();
    const broken = Buffer.from(compressed);
    broken.fill(0x55, 100, 4000);
    await expect(passThrough(new HeadTap(inspect.stage, 8 * 1024 * 1024), broken)).rejects.toThrow(/the zstd output does not decode/);
  });

  it('the side decoder never holds the stream back: a slow inspection consumer does not stall it', async () => {
    const inspect = new PassThrough({ highWaterMark: 1 });
    const tap = new HeadTap(inspect, 64 * 1024);
    const passed = await passThrough(tap, compressed);
    expect(passed.length).toBe(compressed.length);
  });
});
