// The zero-copy path of a backup stream: a tool's stdout handed to zstd's stdin (one pipe between
// the two children), the totals read from `zstd -vv`. Real zstd, real producers (cat of a file)
// and the failing fixtures; the output is checked by the stock `zstd -d`.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolError } from '../../src/capture/tool-process.ts';
import { parseZstdTotals, pipedZstd, startPipedCompression } from '../../src/pipeline/piped-zstd.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const ZSTD = '/usr/bin/zstd';
const CAT = '/usr/bin/cat';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a failing run's output to its end and returns the error `done` rejects with (a ToolError). */
async function failureOf(run: ReturnType<typeof startPipedCompression>): Promise<ToolError> {
  await collect(run.output);
  const err = await run.done.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ToolError);
  return err as ToolError;
}

let dir: string;
let input: string;
let payload: Buffer;
beforeAll(async () => {
  expect(existsSync(ZSTD), 'zstd is not installed (scripts/setup.sh installs it)').toBe(true);
  dir = await mkdtemp(join(tmpdir(), 'piped-zstd-'));
  // Compressible text with random bytes in the middle, larger than a pipe's buffer many times over.
  const line = Buffer.from("INSERT INTO t VALUES (1,'alpha','zürich',NULL);\n");
  payload = Buffer.alloc(6 * 1024 * 1024 + 17);
  for (let at = 0; at < payload.length; at += line.length) line.copy(payload, at);
  randomBytes(65536).copy(payload, 1024 * 1024);
  input = join(dir, 'input.bin');
  await writeFile(input, payload);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseZstdTotals', () => {
  it('reads the exact totals of zstd -vv, the last report when there are several, and nothing from other text', () => {
    expect(parseZstdTotals('*** Zstandard CLI (64-bit) v1.5.4 ***\nDecompression will require 524288 B of memory\n/*stdin*\\            : 31.98%   (1393412345 B => 445612345 B, /*stdout*\\) \n')).toEqual({ raw: 1393412345, compressed: 445612345 });
    expect(parseZstdTotals('/*stdin*\\ :360.00%   (     5 B =>     18 B, /*stdout*\\) \n')).toEqual({ raw: 5, compressed: 18 });
    expect(parseZstdTotals('/*stdin*\\ : 30.12%   (  1.30 GiB =>    426 MiB, /*stdout*\\)')).toBeUndefined();
    expect(parseZstdTotals('')).toBeUndefined();
  });
});

describe('startPipedCompression', () => {
  it('the installed zstd reports its totals: the piped path is available', async () => {
    expect(await pipedZstd()).toMatchObject({ path: expect.stringMatching(/zstd$/) as unknown as string });
  });

  it('compresses what the tool writes into a .zst the stock zstd -d reads back byte for byte, with exact totals', async () => {
    const run = startPipedCompression(CAT, [input], { path: ZSTD, threads: 2, level: 1 }, new AbortController().signal);
    const output = await collect(run.output);
    await run.done;
    expect(run.totals()).toEqual({ raw: payload.length, compressed: output.length });
    const back = await execa(ZSTD, ['-d', '-c'], { input: output, encoding: 'buffer' });
    expect(Buffer.from(back.stdout).equals(payload)).toBe(true);
  });

  it('a tool that fails is the error, with its stderr', async () => {
    const run = startPipedCompression(CAT, [join(dir, 'missing')], { path: ZSTD, threads: 1, level: 1 }, new AbortController().signal);
    const err = await failureOf(run);
    expect(err.tool).toBe('cat');
    expect(err.stderr).toContain('No such file or directory');
  });

  it('a zstd that fails mid-stream is the error (not the tool, which dies of the broken pipe)', async () => {
    const run = startPipedCompression(CAT, [input], { path: join(FIXTURES, 'failing-zstd.sh'), threads: 1, level: 1 }, new AbortController().signal);
    const err = await failureOf(run);
    expect(err.tool).toBe('zstd');
    expect(err.stderr).toContain('No space left on device');
  });

  it("a failed zstd's message is its complaint, not the -vv banner and report lines", async () => {
    const noisy = join(dir, 'noisy-zstd.sh');
    await writeFile(noisy, '#!/bin/sh\necho "*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***" >&2\necho "Using stdout for output" >&2\nhead -c 65536 > /dev/null\necho "zstd: error 70 : Write error : cannot write block : No space left on device" >&2\nexit 1\n', { mode: 0o755 });
    const run = startPipedCompression(CAT, [input], { path: noisy, threads: 1, level: 1 }, new AbortController().signal);
    const err = await failureOf(run);
    expect(err.message).toBe('zstd exited with code 1: zstd: error 70 : Write error : cannot write block : No space left on device');
  });

  it('an abort kills both children', async () => {
    const controller = new AbortController();
    // A tool that would write forever: cat of /dev/zero.
    const run = startPipedCompression(CAT, ['/dev/zero'], { path: ZSTD, threads: 1, level: 1 }, controller.signal);
    run.output.resume();
    setTimeout(() => controller.abort(new Error('test: cancelled')), 200);
    await expect(run.done).rejects.toBeInstanceOf(ToolError);
    await expect(run.tool.done).rejects.toBeInstanceOf(ToolError);
    await expect(run.zstd.done).rejects.toBeInstanceOf(ToolError);
  });
});
