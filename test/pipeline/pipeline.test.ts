// Byte-stream stages: the exit gate, compression (checked against the stock zstd and gzip tools)
// and the digest/counting stages.
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { compressionExtension, createCompressor, createDecompressor, type Algorithm } from '../../src/pipeline/compress.ts';
import { CountingStream, DigestStream } from '../../src/pipeline/digest.ts';
import { ExitGate } from '../../src/pipeline/exit-gate.ts';
import { Rechunk } from '../../src/pipeline/rechunk.ts';

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A sink that records what it received and whether it was finished cleanly. */
function recorder(): { sink: Writable; chunks: Buffer[]; finished: () => boolean } {
  const chunks: Buffer[] = [];
  let finished = false;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
    final(cb) {
      finished = true;
      cb();
    },
  });
  return { sink, chunks, finished: () => finished };
}

/** SQL-like text: compressible, but not trivially. Deterministic. */
function sqlText(bytes: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', "O'Brien", 'zürich', '12345', 'NULL', '2026-01-01', 'lorem'];
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `INSERT INTO t VALUES (${i},'${words[(i * 7) % words.length]}','${words[(i * 13 + 3) % words.length]}',${(i * 2654435761) % 1000003});\n`;
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function through(input: Buffer, ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out = recorder();
  // Feed in uneven chunks so stage boundaries do not line up with anything.
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += 65_537) chunks.push(input.subarray(at, at + 65_537));
  await pipeline(Readable.from(chunks, { objectMode: false }), ...(stages as [NodeJS.ReadWriteStream]), out.sink);
  return Buffer.concat(out.chunks);
}

describe('ExitGate', () => {
  it('passes data through at once but ends only after the promise resolves', async () => {
    const settled = deferred();
    const gate = new ExitGate(settled.promise);
    const out = recorder();
    const done = pipeline(Readable.from([Buffer.from('abc'), Buffer.from('def')]), gate, out.sink);
    let ended = false;
    void done.then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(out.chunks).toString()).toBe('abcdef'); // data is not held back…
    expect(ended).toBe(false); // …the end is
    expect(out.finished()).toBe(false);
    settled.resolve();
    await done;
    expect(out.finished()).toBe(true);
  });

  it('turns a rejection into a stream error: no clean end, the rejection is the error', async () => {
    const settled = deferred();
    const gate = new ExitGate(settled.promise);
    const out = recorder();
    let endEmitted = false;
    gate.on('end', () => (endEmitted = true));
    const done = pipeline(Readable.from([Buffer.from('partial output')]), gate, out.sink);
    await new Promise((r) => setTimeout(r, 20));
    const toolError = new Error('mariadb-dump exited with code 2');
    settled.reject(toolError);
    await expect(done).rejects.toBe(toolError);
    expect(Buffer.concat(out.chunks).toString()).toBe('partial output');
    expect(endEmitted).toBe(false);
    expect(out.finished()).toBe(false);
  });

  it('wraps a non-Error rejection into an Error', async () => {
    const settled = deferred();
    const done = pipeline(Readable.from([Buffer.from('x')]), new ExitGate(settled.promise), recorder().sink);
    settled.reject('exit 3');
    await expect(done).rejects.toThrow(/^exit 3$/);
  });

  it('fails a consumer that reads it directly (a storage put never sees a clean EOF)', async () => {
    const settled = deferred();
    const source = new PassThrough();
    const gate = new ExitGate(settled.promise);
    source.pipe(gate);
    source.end('truncated');
    const failure = new Error('tool killed by SIGKILL');
    setTimeout(() => settled.reject(failure), 10);
    const read = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of gate) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    })();
    await expect(read).rejects.toBe(failure);
  });
});

describe('compression', () => {
  const input = Buffer.concat([sqlText(3 * 1024 * 1024), randomBytes(256 * 1024), sqlText(100_000)]);
  const algorithms: { algorithm: Algorithm; level: number }[] = [
    { algorithm: 'zstd', level: 3 },
    { algorithm: 'gzip', level: 6 },
    { algorithm: 'none', level: 0 },
  ];

  it.each(algorithms)('$algorithm round-trips byte-equal', async (compression) => {
    const packed = await through(input, createCompressor(compression));
    if (compression.algorithm === 'none') expect(packed.equals(input)).toBe(true);
    else expect(packed.length).toBeLessThan(input.length * 0.6);
    const unpacked = await through(packed, createDecompressor(compression.algorithm));
    expect(unpacked.equals(input)).toBe(true);
  });

  it('zstd output is read by the stock zstd tool, and carries a frame checksum', async () => {
    const packed = await through(input, createCompressor({ algorithm: 'zstd', level: 3 }));
    expect(packed.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])); // zstd frame magic
    expect((packed[4] ?? 0) & 0x04).toBe(0x04); // Content_Checksum_flag of the frame header
    const { stdout } = await execa('zstd', ['-dc'], { input: packed, encoding: 'buffer', stripFinalNewline: false });
    expect(Buffer.from(stdout).equals(input)).toBe(true);
    await expect(execa('zstd', ['-t'], { input: packed })).resolves.toMatchObject({ exitCode: 0 });
  });

  it('gzip output is read by the stock gzip tool', async () => {
    const packed = await through(input, createCompressor({ algorithm: 'gzip', level: 6 }));
    const { stdout } = await execa('gzip', ['-dc'], { input: packed, encoding: 'buffer', stripFinalNewline: false });
    expect(Buffer.from(stdout).equals(input)).toBe(true);
  });

  it('reads what the stock tools write', async () => {
    for (const [tool, algorithm] of [['zstd', 'zstd'], ['gzip', 'gzip']] as const) {
      const { stdout } = await execa(tool, ['-c'], { input, encoding: 'buffer', stripFinalNewline: false });
      const unpacked = await through(Buffer.from(stdout), createDecompressor(algorithm));
      expect(unpacked.equals(input)).toBe(true);
    }
  });

  it('applies the level', async () => {
    const text = sqlText(512 * 1024);
    for (const [algorithm, low, high] of [['zstd', 1, 19], ['gzip', 1, 9]] as const) {
      const fast = await through(text, createCompressor({ algorithm, level: low }));
      const small = await through(text, createCompressor({ algorithm, level: high }));
      expect(small.length).toBeLessThan(fast.length);
    }
  });

  it('a corrupted zstd stream fails to decompress instead of yielding wrong bytes', async () => {
    const packed = await through(input, createCompressor({ algorithm: 'zstd', level: 3 }));
    const corrupted = Buffer.from(packed);
    const at = Math.floor(corrupted.length / 2);
    corrupted[at] = (corrupted[at] ?? 0) ^ 0xff;
    await expect(through(corrupted, createDecompressor('zstd'))).rejects.toThrow();
  });

  it('names the file extensions', () => {
    expect(compressionExtension('zstd')).toBe('.zst');
    expect(compressionExtension('gzip')).toBe('.gz');
    expect(compressionExtension('none')).toBe('');
  });
});

describe('DigestStream and CountingStream', () => {
  it('DigestStream gives the size and SHA-256 of what passed, unchanged', async () => {
    const data = randomBytes(1_234_567);
    const digest = new DigestStream();
    const out = await through(data, digest);
    expect(out.equals(data)).toBe(true);
    expect(digest.bytes).toBe(data.length);
    expect(digest.sha256).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('DigestStream of nothing is the SHA-256 of the empty string', async () => {
    const digest = new DigestStream();
    await pipeline(Readable.from([], { objectMode: false }), digest, recorder().sink);
    expect(digest.bytes).toBe(0);
    expect(digest.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('DigestStream refuses to give a digest before the end', () => {
    const digest = new DigestStream();
    digest.write(Buffer.from('abc'));
    expect(digest.bytes).toBe(3);
    expect(() => digest.sha256).toThrow(/before the stream ended/);
    digest.destroy();
  });

  it('CountingStream counts bytes and reports growing totals', async () => {
    const seen: number[] = [];
    const counter = new CountingStream((n) => seen.push(n));
    const data = randomBytes(300_000);
    const out = await through(data, counter);
    expect(out.equals(data)).toBe(true);
    expect(counter.bytes).toBe(300_000);
    expect(seen.at(-1)).toBe(300_000);
    expect(seen.length).toBeGreaterThan(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1] ?? 0);
  });
});

describe('Rechunk', () => {
  it('gathers small chunks into blocks of the given size, the rest at the end, bytes unchanged', async () => {
    const input = Array.from({ length: 25 }, (_, i) => Buffer.alloc(1000, i));
    const blocks: Buffer[] = [];
    for await (const block of Readable.from(input).pipe(new Rechunk(4096))) blocks.push(block as Buffer);
    expect(blocks.map((b) => b.length)).toEqual([5000, 5000, 5000, 5000, 5000]);
    expect(Buffer.concat(blocks).equals(Buffer.concat(input))).toBe(true);
  });
});
