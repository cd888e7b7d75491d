// The passphrase stages (age's scrypt recipient, by the age-encryption library in a worker thread):
// round trip, the header the stock `age -d` reads, refusals sorted by reason (wrong passphrase,
// damaged data, unreadable file), and flow control: an unread output stops the input.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgePassphraseError, createPassphraseDecryptor, createPassphraseEncryptor } from '../../src/pipeline/age-passphrase.ts';
import { testDir } from '../helpers.ts';

const PASSPHRASE = 'quartz-meadow-ember-violin-tundra';
let right: string;
let wrong: string;

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(stream, new Writable({ write: (chunk: Buffer, _e, cb) => (parts.push(chunk), cb()) }));
  return Buffer.concat(parts);
}

const encrypt = (plain: Buffer, file = right) => collect(Readable.from(chunks(plain)).pipe(createPassphraseEncryptor(file, 10)));
const decrypt = (cipher: Buffer, file = right) => collect(Readable.from(chunks(cipher)).pipe(createPassphraseDecryptor(file)));

function* chunks(bytes: Buffer, size = 50_000): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function failure(promise: Promise<unknown>): Promise<AgePassphraseError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgePassphraseError);
  return err as AgePassphraseError;
}

beforeAll(async () => {
  const dir = await testDir('age-passphrase');
  right = join(dir, 'right');
  wrong = join(dir, 'wrong');
  await writeFile(right, `${PASSPHRASE}\n`, { mode: 0o600 });
  await writeFile(wrong, 'not-the-passphrase\n', { mode: 0o600 });
});

describe('passphrase stages', () => {
  it('round-trips 3 MiB (several 64 KiB chunks and a short last one) in age format with one scrypt stanza', async () => {
    const plain = randomBytes(3 * 1024 * 1024 + 12_345);
    const cipher = await encrypt(plain);
    const header = cipher.subarray(0, 200).toString('latin1').split('\n');
    expect(header[0]).toBe('age-encryption.org/v1');
    expect(header[1]).toMatch(/^-> scrypt [A-Za-z0-9+/]{22} 10$/);
    expect(header.filter((l) => l.startsWith('-> '))).toHaveLength(1);
    expect(cipher.includes(Buffer.from(PASSPHRASE))).toBe(false);
    expect((await decrypt(cipher)).equals(plain)).toBe(true);
  });

  it('an empty input is a valid age file', async () => {
    expect((await decrypt(await encrypt(Buffer.alloc(0)))).length).toBe(0);
  });

  it('a wrong passphrase fails before any byte comes out', async () => {
    const cipher = await encrypt(randomBytes(200_000));
    let out = 0;
    const decryptor = createPassphraseDecryptor(wrong);
    decryptor.on('data', (chunk: Buffer) => (out += chunk.length));
    const err = await failure(pipeline(Readable.from(chunks(cipher)), decryptor));
    expect(err.reason).toBe('passphrase');
    expect(err.message).toBe("no identity matched any of the file's recipients");
    expect(out).toBe(0);
  });

  it('a truncated or altered file fails as damaged', async () => {
    const cipher = await encrypt(randomBytes(300_000));
    expect((await failure(decrypt(cipher.subarray(0, cipher.length - 100)))).reason).toBe('damaged');
    expect((await failure(decrypt(cipher.subarray(0, 70_000)))).reason).toBe('damaged');
    const flipped = Buffer.from(cipher);
    flipped.writeUInt8((flipped[150_000] ?? 0) ^ 0x01, 150_000);
    expect((await failure(decrypt(flipped))).reason).toBe('damaged');
    expect((await failure(decrypt(Buffer.from('not age at all\n')))).reason).toBe('damaged');
  });

  it('an unreadable passphrase file fails, naming the file and not a passphrase', async () => {
    const err = await failure(encrypt(randomBytes(10), '/nonexistent/passphrase'));
    expect(err.reason).toBe('passphrase-file');
    expect(err.message).toBe('cannot read passphrase file /nonexistent/passphrase (ENOENT)');
  });

  it('keeps flow control: with nobody reading its output, it stops taking input', async () => {
    let given = 0;
    const source = new Readable({
      read() {
        given += 65_536;
        this.push(randomBytes(65_536));
      },
    });
    const stage = createPassphraseEncryptor(right, 10);
    source.pipe(stage);
    await sleep(1500);
    // A few chunks in each buffer (the source's, the stage's, the worker's window), not the stream.
    expect(given).toBeGreaterThan(0);
    expect(given).toBeLessThan(2 * 1024 * 1024);
    source.destroy();
    stage.destroy();
  });
});
