// The zstd CLI compression stage (a child process through the one tool wrapper) and the choice
// between it and Node's zlib. Real zstd, real fixture scripts for its failures.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseZstdEngine } from '../../src/pipeline/compress.ts';
import { createZstdCliCompressor } from '../../src/pipeline/zstd-cli.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const ZSTD = '/usr/bin/zstd';

/** Compressible, deterministic text with some random bytes mixed in. */
function payload(bytes: number): Buffer {
  const line = Buffer.from("INSERT INTO t VALUES (1,'alpha','zürich',NULL,'2026-01-01');\n");
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += line.length) line.copy(out, at);
  randomBytes(4096).copy(out, Math.floor(bytes / 2));
  return out;
}

let dir: string;
beforeAll(async () => {
  // The stage's tests need the real CLI: fail, never skip, when it is missing.
  expect(existsSync(ZSTD), 'zstd is not installed (scripts/setup.sh installs it)').toBe(true);
  dir = await mkdtemp(join(tmpdir(), 'zstd-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('zstd CLI stage', () => {
  it('writes a .zst with its content checksum that stock zstd -d reads back byte for byte', async () => {
    const input = payload(6 * 1024 * 1024 + 17);
    const file = join(dir, 'out.zst');
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    await pipeline(Readable.from([input.subarray(0, 100_000), input.subarray(100_000)]), createZstdCliCompressor(ZSTD, 1, 2), sink);
    const compressed = Buffer.concat(chunks);
    expect(compressed.length).toBeLessThan(input.length / 10);
    await writeFile(file, compressed);
    const listed = await execa(ZSTD, ['-lv', file]);
    expect(listed.stdout).toMatch(/# Zstandard Frames: 1\n/); // one frame, as docs/FORMAT.md says, threads or not
    expect(listed.stdout).toMatch(/Check:\s+XXH64/);
    const back = await execa(ZSTD, ['-dc', file], { encoding: 'buffer' });
    expect(Buffer.compare(back.stdout, input)).toBe(0);
  });

  it('calls a write back only once zstd has taken the chunk: a caller may reuse its buffer then', async () => {
    const input = payload(3 * 1024 * 1024 + 5);
    const stage = createZstdCliCompressor(ZSTD, 1, 2);
    const chunks: Buffer[] = [];
    const collected = pipeline(stage, new Writable({ write: (chunk: Buffer, _enc, cb) => (chunks.push(chunk), cb()) }));
    // One small buffer reused for every write, as the binlog segment upload does; overwritten at once.
    const reused = Buffer.alloc(1000);
    for (let at = 0; at < input.length; at += reused.length) {
      const n = input.copy(reused, 0, at, at + reused.length);
      await new Promise<void>((resolve, reject) => stage.write(reused.subarray(0, n), (err) => (err ? reject(err) : resolve())));
      reused.fill(0x5a);
    }
    stage.end();
    await collected;
    const file = join(dir, 'reused.zst');
    await writeFile(file, Buffer.concat(chunks));
    const back = await execa(ZSTD, ['-dc', file], { encoding: 'buffer' });
    expect(Buffer.compare(back.stdout, input)).toBe(0);
  });

  it('fails with zstd\'s exit code and stderr when it fails mid-stream, and never ends cleanly', async () => {
    let ended = false;
    const sink = new Writable({
      write(_chunk, _enc, cb) {
        cb();
      },
      final(cb) {
        ended = true;
        cb();
      },
    });
    const run = pipeline(Readable.from([payload(4 * 1024 * 1024)]), createZstdCliCompressor(join(FIXTURES, 'failing-zstd.sh'), 1, 2), sink);
    await expect(run).rejects.toThrow(/failing-zstd\.sh exited with code 1: zstd: error 70 : Write error/);
    expect(ended).toBe(false);
  });

  it('kills zstd when the chain is torn down before the end', async () => {
    const pidFile = join(dir, 'zstd.pid');
    const previous = process.env['TMPDIR'];
    process.env['TMPDIR'] = dir; // the tool wrapper passes TMPDIR on: the fixture writes its pid there
    const source = new PassThrough();
    let run: Promise<void>;
    try {
      run = pipeline(source, createZstdCliCompressor(join(FIXTURES, 'hanging-zstd.sh'), 1, 2), new PassThrough());
    } finally {
      if (previous === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = previous;
    }
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await sleep(50);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow();
    source.destroy(new Error('the dump failed'));
    await expect(run).rejects.toThrow(/the dump failed/);
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await sleep(50);
      try {
        process.kill(pid, 0);
      } catch {
        gone = true;
      }
    }
    expect(gone).toBe(true);
  });
});

describe('zstd engine choice', () => {
  const withZstd = dirname(ZSTD);
  it('takes the CLI when it is on PATH, with -T2 by default', async () => {
    expect(await chooseZstdEngine({ PATH: withZstd })).toEqual({ kind: 'cli', path: ZSTD, threads: 2 });
    expect(await chooseZstdEngine({ PATH: withZstd, AGENT_ZSTD_THREADS: '0' })).toEqual({ kind: 'cli', path: ZSTD, threads: 0 });
  });

  it("falls back to Node's zlib without the CLI, or when asked to", async () => {
    expect(await chooseZstdEngine({ PATH: dir })).toEqual({ kind: 'zlib' });
    expect(await chooseZstdEngine({ PATH: withZstd, AGENT_ZSTD: 'zlib' })).toEqual({ kind: 'zlib' });
  });

  it('refuses what it cannot honour instead of degrading', async () => {
    await expect(chooseZstdEngine({ PATH: dir, AGENT_ZSTD: 'cli' })).rejects.toThrow(/no zstd on PATH/);
    await expect(chooseZstdEngine({ PATH: withZstd, AGENT_ZSTD: 'fast' })).rejects.toThrow(/AGENT_ZSTD=fast/);
    await expect(chooseZstdEngine({ PATH: withZstd, AGENT_ZSTD_THREADS: 'many' })).rejects.toThrow(/AGENT_ZSTD_THREADS=many/);
  });
});
