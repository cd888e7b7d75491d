// unpackStream with the zstd command: decompression straight into the unpacking tool (one pipe
// between the two children), and whose error a failure reports. Real zstd; `tee` stands in for
// mbstream (it reads its stdin to the end and writes it to a file), `head -c` for a tool that
// stops reading and fails.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.ts';
import { unpackStream } from '../../src/restore/physical-restore.ts';

let dir: string;
const payload = Buffer.concat([Buffer.alloc(3_000_000, 'row;'), randomBytes(500_000)]);
const compressed = zlib.zstdCompressSync(payload);
const pieces = (data: Buffer) => Readable.from(Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536)));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'unpack-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('unpackStream through the zstd command', () => {
  it('the tool receives the plaintext byte for byte', async () => {
    const out = join(dir, 'plain.bin');
    await unpackStream(pieces(compressed), 'zstd', '/usr/bin/tee', [out], 'unpack test');
    expect((await readFile(out)).equals(payload)).toBe(true);
  });

  it('a stream zstd cannot decode fails with zstd\'s words', async () => {
    const broken = Buffer.from(compressed);
    broken.fill(0x33, 2000, 60_000);
    const err = await unpackStream(pieces(broken), 'zstd', '/usr/bin/tee', [join(dir, 'broken.bin')], 'unpack test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as Error).message).toMatch(/^unpack test: zstd exited with code 1: .*(Corrupted|Data corruption|error)/i);
  });

  it('a tool that fails is the cause, not zstd dying of the broken pipe', async () => {
    const err = await unpackStream(pieces(compressed), 'zstd', '/usr/bin/sh', ['-c', 'head -c 1000 > /dev/null; echo "mbstream: no space left" >&2; exit 3'], 'unpack test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as Error).message).toMatch(/^unpack test: sh exited with code 3: mbstream: no space left/);
  });
});
