// The one storage contract suite (src/storage/driver.ts). Every driver — memory, local, S3, GCS —
// runs it, so the in-memory fake is proven to behave like the real stores.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageNotFoundError, type ObjectInfo, type StorageDriver } from '../../src/storage/driver.ts';
import { uniqueName } from '../helpers.ts';

const MiB = 1024 * 1024;
/** An odd chunk size, so chunk and part boundaries never line up. */
const CHUNK = 700_001;
const SOURCE_ERROR = 'source failed on purpose';

export interface GeneratedBody {
  stream: Readable;
  /** SHA-256 of every byte produced so far (complete once the stream has ended). */
  sha256(): string;
  produced(): number;
}

/**
 * A body of `total` random bytes produced chunk by chunk (never held in memory at once).
 * `failAt`: throw SOURCE_ERROR once that many bytes were produced. `onBytes` sees the running count.
 */
export function generatedBody(total: number, opts: { failAt?: number; onBytes?: (produced: number) => void } = {}): GeneratedBody {
  const hash = createHash('sha256');
  let produced = 0;
  async function* gen(): AsyncGenerator<Buffer> {
    while (produced < total) {
      if (opts.failAt !== undefined && produced >= opts.failAt) throw new Error(SOURCE_ERROR);
      const chunk = randomBytes(Math.min(CHUNK, total - produced));
      hash.update(chunk);
      produced += chunk.length;
      yield chunk;
      opts.onBytes?.(produced);
    }
  }
  return { stream: Readable.from(gen(), { objectMode: false }), sha256: () => hash.copy().digest('hex'), produced: () => produced };
}

export function bodyOf(data: string | Buffer): Readable {
  return Readable.from([Buffer.from(data)], { objectMode: false });
}

export async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function listAll(driver: StorageDriver, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of driver.list(prefix)) out.push(info);
  return out;
}

export async function prefixesOf(driver: StorageDriver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const dir of driver.listPrefixes(prefix)) out.push(dir);
  return out;
}

async function sha256Of(stream: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

export interface ContractQuirks {
  /**
   * s3rver lists by walking its directory tree, so it returns "d/2026/a" before "d/2026-b" and
   * "d/2026.c", where S3 (and GCS) list in UTF-8 byte order ("-" and "." sort before "/"). With
   * this set, only the relative order of keys that differ at such a character is left unchecked;
   * which keys are listed is still checked exactly.
   */
  listsByDirectoryWalk?: boolean;
}

export interface ContractSubject {
  driver: StorageDriver;
  cleanup?: () => Promise<void>;
  /** Requests that reached the store so far (an HTTP store behind a counting proxy). */
  requests?: () => number;
}

export function storageContract(name: string, make: () => Promise<ContractSubject>, quirks: ContractQuirks = {}): void {
  /** The listed keys, as compared against a bytewise-sorted expectation. */
  const keysInListOrder = (listed: ObjectInfo[]): string[] => {
    const keys = listed.map((o) => o.key);
    return quirks.listsByDirectoryWalk ? keys.sort() : keys;
  };

  describe(`storage contract: ${name}`, () => {
    let driver: StorageDriver;
    let cleanup: (() => Promise<void>) | undefined;
    let requests: (() => number) | undefined;

    beforeAll(async () => {
      ({ driver, cleanup, requests } = await make());
    });

    afterAll(async () => {
      await driver?.close();
      await cleanup?.();
    });

    /** A fresh key prefix per case, so cases never see each other's objects. */
    const area = (label: string): string => uniqueName(label);

    it('has a location', () => {
      expect(driver.location).toEqual(expect.any(String));
      expect(driver.location.length).toBeGreaterThan(0);
    });

    it('round-trips a small object byte-equal and returns its size', async () => {
      const key = `${area('small')}/hello.txt`;
      const data = Buffer.from('hello, storage\n\u00e9\u0000\xff');
      await expect(driver.put(key, bodyOf(data))).resolves.toEqual({ size: data.length });
      expect(await readAll(await driver.get(key))).toEqual(data);
    });

    it('round-trips an empty object', async () => {
      const key = `${area('empty')}/empty.bin`;
      await expect(driver.put(key, Readable.from([], { objectMode: false }))).resolves.toEqual({ size: 0 });
      expect((await readAll(await driver.get(key))).length).toBe(0);
      expect((await driver.stat(key))?.size).toBe(0);
    });

    it('round-trips a ~12 MiB streamed object byte-equal', async () => {
      const key = `${area('big')}/big.bin`;
      const total = 12 * MiB + 12_345;
      const body = generatedBody(total);
      await expect(driver.put(key, body.stream)).resolves.toEqual({ size: total });
      const got = await sha256Of(await driver.get(key));
      expect(got.size).toBe(total);
      expect(got.sha256).toBe(body.sha256());
      expect((await driver.stat(key))?.size).toBe(total);
    });

    it('an object in flight is invisible until its put resolves', async () => {
      const dir = area('inflight');
      const key = `${dir}/slow.bin`;
      let reachedGate!: () => void;
      const reached = new Promise<void>((resolve) => (reachedGate = resolve));
      let openGate!: () => void;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      const hash = createHash('sha256');
      async function* gen(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 9; i++) {
          if (i === 6) {
            reachedGate();
            await gate;
          }
          const chunk = randomBytes(MiB);
          hash.update(chunk);
          yield chunk;
        }
      }
      const put = driver.put(key, Readable.from(gen(), { objectMode: false }));
      await reached; // 6 MiB handed over (more than one S3 part), the rest held back
      await expect(driver.stat(key)).resolves.toBeUndefined();
      await expect(driver.get(key)).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await listAll(driver, `${dir}/`)).toEqual([]);
      openGate();
      await expect(put).resolves.toEqual({ size: 9 * MiB });
      expect((await listAll(driver, `${dir}/`)).map((o) => [o.key, o.size])).toEqual([[key, 9 * MiB]]);
      expect((await sha256Of(await driver.get(key))).sha256).toBe(hash.digest('hex'));
    });

    it('put replaces an existing object', async () => {
      const key = `${area('replace')}/obj`;
      await driver.put(key, bodyOf('first version, longer'));
      await expect(driver.put(key, bodyOf('second'))).resolves.toEqual({ size: 6 });
      expect((await readAll(await driver.get(key))).toString()).toBe('second');
      expect((await driver.stat(key))?.size).toBe(6);
      expect((await listAll(driver, key)).map((o) => o.key)).toEqual([key]);
    });

    it('stat gives key, size and a Date; undefined for a missing key', async () => {
      const dir = area('stat');
      const key = `${dir}/a/b.bin`;
      const before = Date.now();
      await driver.put(key, bodyOf(Buffer.alloc(1234, 7)));
      const info = await driver.stat(key);
      expect(info).toMatchObject({ key, size: 1234 });
      expect(info?.modifiedAt).toBeInstanceOf(Date);
      // Store clocks may have second resolution and drift a little; a minute either way is generous.
      expect(Math.abs((info?.modifiedAt.getTime() ?? 0) - before)).toBeLessThan(60_000);
      await expect(driver.stat(`${dir}/a/missing.bin`)).resolves.toBeUndefined();
      await expect(driver.stat(`${area('nothing')}/x`)).resolves.toBeUndefined();
    });

    it('get with a range reads those bytes: inside, to the end, clipped past the end, empty from past the end', async () => {
      const key = `${area('range')}/obj.bin`;
      const data = randomBytes(300_001);
      await driver.put(key, bodyOf(data));
      const ranged = async (start: number, end: number) => readAll(await driver.get(key, { range: { start, end } }));
      expect(await ranged(0, 0)).toEqual(data.subarray(0, 1));
      expect(await ranged(1000, 199_999)).toEqual(data.subarray(1000, 200_000));
      expect(await ranged(300_000, 300_000)).toEqual(data.subarray(300_000));
      expect(await ranged(250_000, 10_000_000)).toEqual(data.subarray(250_000));
      expect((await ranged(300_001, 300_100)).length).toBe(0);
      await expect(driver.get(key, { range: { start: 5, end: 4 } })).rejects.toBeInstanceOf(RangeError);
      await expect(driver.get(key, { range: { start: -1, end: 4 } })).rejects.toBeInstanceOf(RangeError);
      await expect(driver.get(`${area('range')}/missing.bin`, { range: { start: 0, end: 9 } })).rejects.toBeInstanceOf(StorageNotFoundError);
    });

    it('get of a missing key rejects with StorageNotFoundError', async () => {
      const key = `${area('missing')}/nope.bin`;
      const err: unknown = await driver.get(key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageNotFoundError);
      expect(err).toMatchObject({ key: expect.stringContaining('nope.bin') });
    });

    it('list returns exactly the keys under a prefix, ascending, with sizes, nested included', async () => {
      const dir = area('list');
      const inside = [`${dir}/db/2026-b`, `${dir}/db/2026/x/y/deep.bin`, `${dir}/db/20260101/manifest.json`, `${dir}/db/2026/a`];
      const outside = [`${dir}/db/2027/manifest.json`, `${dir}/db/2025`, `${dir}/db2026/x`, `${dir}/other/db/2026/x`];
      // Put in a scrambled order with distinct sizes so ordering and sizes are really checked.
      const all = [...outside.slice(0, 2), ...inside.slice(2), ...outside.slice(2), ...inside.slice(0, 2)];
      for (const [i, key] of all.entries()) await driver.put(key, bodyOf(Buffer.alloc(10 + i, 1)));
      const sizeOf = (key: string): number => 10 + all.indexOf(key);

      const listed = await listAll(driver, `${dir}/db/2026`);
      const expected = [...inside].sort();
      expect(expected[0]).toBe(`${dir}/db/2026-b`); // bytewise: "-" sorts before "/"
      expect(keysInListOrder(listed)).toEqual(expected);
      for (const info of listed) expect(info.size).toBe(sizeOf(info.key));
      for (const info of listed) expect(info.modifiedAt).toBeInstanceOf(Date);

      expect((await listAll(driver, `${dir}/db/2027`)).map((o) => o.key)).toEqual([`${dir}/db/2027/manifest.json`]);
      expect(keysInListOrder(await listAll(driver, `${dir}/`))).toEqual([...all].sort());
      expect((await listAll(driver, `${dir}/db/2026/`)).map((o) => o.key)).toEqual([`${dir}/db/2026/a`, `${dir}/db/2026/x/y/deep.bin`]);
    });

    it('list of "a/" does not list "ab/x" (a prefix is not a directory name match)', async () => {
      const dir = area('sibling');
      await driver.put(`${dir}/ab/x`, bodyOf('ab'));
      await driver.put(`${dir}/a/x`, bodyOf('a'));
      await driver.put(`${dir}/a/y/z`, bodyOf('ayz'));
      await driver.put(`${dir}/a.txt`, bodyOf('a sibling whose name starts with "a"'));
      const keys = (await listAll(driver, `${dir}/a/`)).map((o) => o.key);
      expect(keys).toEqual([`${dir}/a/x`, `${dir}/a/y/z`]);
      expect((await listAll(driver, `${dir}/ab/`)).map((o) => o.key)).toEqual([`${dir}/ab/x`]);
      expect(keysInListOrder(await listAll(driver, `${dir}/a`))).toEqual([`${dir}/a.txt`, `${dir}/a/x`, `${dir}/a/y/z`, `${dir}/ab/x`]);
    });

    it('list order is ascending by key, not by insertion or time', async () => {
      const dir = area('order');
      const keys = [`${dir}/k/b`, `${dir}/k/a/z`, `${dir}/k/a0`, `${dir}/k/B`, `${dir}/k/a/b`, `${dir}/k/10`, `${dir}/k/9`];
      for (const key of keys) await driver.put(key, bodyOf(key));
      expect((await listAll(driver, `${dir}/k/`)).map((o) => o.key)).toEqual(
        ['10', '9', 'B', 'a/b', 'a/z', 'a0', 'b'].map((k) => `${dir}/k/${k}`),
      );
    });

    it('list of a prefix with nothing under it is empty', async () => {
      expect(await listAll(driver, `${area('void')}/`)).toEqual([]);
    });

    it('list pages through more objects than one page', async () => {
      // S3 and GCS answer 1000 keys per page: 1003 objects need two pages.
      const dir = area('paged');
      const keys = Array.from({ length: 1003 }, (_, i) => `${dir}/k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((k) => driver.put(k, bodyOf('x'))));
      }
      const listed = await listAll(driver, `${dir}/`);
      expect(listed.map((o) => o.key)).toEqual(keys);

      // A caller that stops after the first key stops the listing: one page was fetched, not two.
      const before = requests?.();
      for await (const info of driver.list(`${dir}/`)) {
        expect(info.key).toBe(keys[0]);
        break;
      }
      if (before !== undefined) expect((requests?.() ?? 0) - before).toBe(1);
      expect(await prefixesOf(driver, `${dir}/`)).toEqual([]);
    });

    it('listPrefixes yields each sub-directory directly below a prefix once, ascending', async () => {
      const dir = area('prefixes');
      const keys = [
        `${dir}/db/2026-b`, // an object directly in db/: no sub-directory
        `${dir}/db/a/x`,
        `${dir}/db/a/y/z`,
        `${dir}/db/a-b/x`,
        `${dir}/db/a.c/x`,
        `${dir}/db/b/only/folders/deep`, // a directory that holds only directories
        `${dir}/db0/x`,
        `${dir}/dc/x`,
      ];
      for (const key of [...keys].reverse()) await driver.put(key, bodyOf(key));
      const sorted = (dirs: string[]) => (quirks.listsByDirectoryWalk ? [...dirs].sort() : dirs);
      const expected = [`${dir}/db/a-b/`, `${dir}/db/a.c/`, `${dir}/db/a/`, `${dir}/db/b/`];
      expect(expected).toEqual([...expected].sort()); // bytewise: "-" and "." sort before "/"
      expect(sorted(await prefixesOf(driver, `${dir}/db/`))).toEqual(expected);
      expect(sorted(await prefixesOf(driver, `${dir}/db/a`))).toEqual(expected.slice(0, 3));
      expect(sorted(await prefixesOf(driver, `${dir}/`))).toEqual([`${dir}/db/`, `${dir}/db0/`, `${dir}/dc/`]);
      expect(await prefixesOf(driver, `${dir}/db/b/only/`)).toEqual([`${dir}/db/b/only/folders/`]);
      expect(await prefixesOf(driver, `${dir}/db/a/y/`)).toEqual([]);
      expect(await prefixesOf(driver, `${area('void')}/`)).toEqual([]);
      // Stopping early is fine, and a deleted directory's last object takes the directory with it.
      for await (const first of driver.listPrefixes(`${dir}/db/`)) {
        expect(expected).toContain(first);
        break;
      }
      await driver.delete(`${dir}/dc/x`);
      expect(sorted(await prefixesOf(driver, `${dir}/`))).toEqual([`${dir}/db/`, `${dir}/db0/`]);
    });

    it('list and stat report the same etag, and a replaced object gets a new one', async () => {
      const key = `${area('etag')}/manifest.json`;
      await driver.put(key, bodyOf('{"v":1}'));
      const first = await driver.stat(key);
      expect(first?.etag).toEqual(expect.any(String));
      expect((await listAll(driver, key))[0]?.etag).toBe(first?.etag);
      await new Promise((resolve) => setTimeout(resolve, 5)); // local etags carry the mtime
      await driver.put(key, bodyOf('{"v":22}'));
      const second = await driver.stat(key);
      expect(second?.etag).toEqual(expect.any(String));
      expect(second?.etag).not.toBe(first?.etag);
      expect((await listAll(driver, key))[0]?.etag).toBe(second?.etag);
    });

    it('every call rejects with AbortError when its signal is already aborted, and changes nothing', async () => {
      const dir = area('aborted');
      const key = `${dir}/obj.json`;
      const version = (await driver.putIfAbsent(key, Buffer.from('{"kept":true}'))) ?? '';
      const signal = AbortSignal.abort();
      const aborted = { name: 'AbortError' };
      const drain = async (items: AsyncIterable<unknown>) => {
        for await (const item of items) void item;
      };
      await expect(driver.get(key, { signal })).rejects.toMatchObject(aborted);
      await expect(driver.stat(key, { signal })).rejects.toMatchObject(aborted);
      await expect(driver.getVersioned(key, { signal })).rejects.toMatchObject(aborted);
      await expect(driver.delete(key, { signal })).rejects.toMatchObject(aborted);
      await expect(driver.putIfAbsent(`${dir}/new.json`, Buffer.from('{}'), { signal })).rejects.toMatchObject(aborted);
      await expect(driver.putIfMatch(key, Buffer.from('{}'), version, { signal })).rejects.toMatchObject(aborted);
      await expect(driver.deleteIfMatch(key, version, { signal })).rejects.toMatchObject(aborted);
      await expect(drain(driver.list(`${dir}/`, { signal }))).rejects.toMatchObject(aborted);
      await expect(drain(driver.listPrefixes(`${dir}/`, { signal }))).rejects.toMatchObject(aborted);
      await expect(driver.abortIncompleteUploads(`${dir}/`, new Date(), undefined, { signal })).rejects.toMatchObject(aborted);
      expect(await driver.getVersioned(key)).toEqual({ data: Buffer.from('{"kept":true}'), version });
      expect(await driver.stat(`${dir}/new.json`)).toBeUndefined();
    });

    it('delete removes an object; deleting a missing key succeeds', async () => {
      const dir = area('delete');
      const key = `${dir}/d/obj`;
      const keep = `${dir}/d/keep`;
      await driver.put(key, bodyOf('bye'));
      await driver.put(keep, bodyOf('stay'));
      await driver.delete(key);
      await expect(driver.stat(key)).resolves.toBeUndefined();
      await expect(driver.get(key)).rejects.toBeInstanceOf(StorageNotFoundError);
      expect((await listAll(driver, `${dir}/`)).map((o) => o.key)).toEqual([keep]);
      await expect(driver.delete(key)).resolves.toBeUndefined();
      await expect(driver.delete(`${area('never')}/was/here`)).resolves.toBeUndefined();
      expect((await readAll(await driver.get(keep))).toString()).toBe('stay');
    });

    it('a put whose body errors midway rejects with the body error and leaves nothing', async () => {
      const dir = area('failed');
      const key = `${dir}/broken.bin`;
      const body = generatedBody(20 * MiB, { failAt: 7 * MiB });
      const err: unknown = await driver.put(key, body.stream).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(body.produced()).toBeGreaterThanOrEqual(7 * MiB); // the failure really came midway
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(SOURCE_ERROR);
      await expect(driver.stat(key)).resolves.toBeUndefined();
      await expect(driver.get(key)).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await listAll(driver, `${dir}/`)).toEqual([]);
    });

    it('a put cancelled through its signal rejects and leaves nothing', async () => {
      const dir = area('cancelled');
      const key = `${dir}/cancelled.bin`;
      const controller = new AbortController();
      // The body itself never fails or stops: only the signal can end this put early.
      const body = generatedBody(20 * MiB, {
        onBytes: (n) => {
          if (n >= 3 * MiB && !controller.signal.aborted) controller.abort();
        },
      });
      const err: unknown = await driver.put(key, body.stream, { signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(controller.signal.aborted).toBe(true);
      expect(err).toMatchObject({ name: 'AbortError' });
      expect(body.produced()).toBeLessThan(20 * MiB);
      await expect(driver.stat(key)).resolves.toBeUndefined();
      expect(await listAll(driver, `${dir}/`)).toEqual([]);
    });

    it('a put with an already aborted signal rejects and leaves nothing', async () => {
      const dir = area('preaborted');
      const key = `${dir}/x.bin`;
      const err: unknown = await driver.put(key, bodyOf('never stored'), { signal: AbortSignal.abort() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ name: 'AbortError' });
      await expect(driver.stat(key)).resolves.toBeUndefined();
      expect(await listAll(driver, `${dir}/`)).toEqual([]);
    });

    it.each(['/abs', 'a//b', '../x', 'a/', 'a/../b', './a', ''])('rejects the invalid key %j', async (bad) => {
      await expect(driver.put(bad, bodyOf('x'))).rejects.toThrow(/invalid object key/);
      await expect(driver.get(bad)).rejects.toThrow(/invalid object key/);
      await expect(driver.stat(bad)).rejects.toThrow(/invalid object key/);
      await expect(driver.delete(bad)).rejects.toThrow(/invalid object key/);
    });

    // Conditional writes. Run one at a time they hold on every driver: a store that ignores
    // preconditions (conditionalWrites false: s3rver, the GCS emulator) gets them emulated by
    // read-compare-write. Exclusion under concurrency is asserted where the driver claims it; the
    // S3/GCS request shapes are covered with client doubles in conditional-writes.test.ts.

    it('getVersioned reads a small object with a version token; undefined when missing', async () => {
      const key = `${area('versioned')}/lease.json`;
      expect(await driver.getVersioned(key)).toBeUndefined();
      await driver.put(key, bodyOf('{"v":1}'));
      const first = await driver.getVersioned(key);
      expect(first?.data).toEqual(Buffer.from('{"v":1}'));
      expect(first?.version).toEqual(expect.any(String));
      expect(first?.version.length).toBeGreaterThan(0);
      await driver.put(key, bodyOf('{"v":2}'));
      const second = await driver.getVersioned(key);
      expect(second?.data).toEqual(Buffer.from('{"v":2}'));
      expect(second?.version).not.toBe(first?.version);
    });

    it('putIfAbsent creates a missing object and returns its version; an existing one is left alone', async () => {
      const key = `${area('cond')}/lock.json`;
      const version = await driver.putIfAbsent(key, Buffer.from('{"owner":"a"}'));
      expect(version).toEqual(expect.any(String));
      expect(await driver.getVersioned(key)).toEqual({ data: Buffer.from('{"owner":"a"}'), version });
      expect(await driver.putIfAbsent(key, Buffer.from('{"owner":"b"}'))).toBeUndefined();
      expect(await readAll(await driver.get(key))).toEqual(Buffer.from('{"owner":"a"}'));
      await driver.delete(key);
      expect(await driver.putIfAbsent(key, Buffer.from('{"owner":"c"}'))).toEqual(expect.any(String));
    });

    it('putIfMatch replaces only the version it names, and returns the new one', async () => {
      const key = `${area('ifmatch')}/lease.json`;
      const v1 = (await driver.putIfAbsent(key, Buffer.from('{"n":1}'))) ?? '';
      const v2 = await driver.putIfMatch(key, Buffer.from('{"n":2}'), v1);
      expect(v2).toEqual(expect.any(String));
      expect(v2).not.toBe(v1);
      expect(await driver.getVersioned(key)).toEqual({ data: Buffer.from('{"n":2}'), version: v2 });
      // The stale token of version 1 no longer matches: nothing is written.
      expect(await driver.putIfMatch(key, Buffer.from('{"n":3}'), v1)).toBeUndefined();
      expect(await readAll(await driver.get(key))).toEqual(Buffer.from('{"n":2}'));
      // A missing object matches no version, and putIfMatch does not create it.
      const missing = `${area('ifmatch-missing')}/lease.json`;
      expect(await driver.putIfMatch(missing, Buffer.from('x'), v1)).toBeUndefined();
      expect(await driver.stat(missing)).toBeUndefined();
    });

    it('deleteIfMatch removes only the version it names', async () => {
      const key = `${area('delmatch')}/lease.json`;
      const v1 = (await driver.putIfAbsent(key, Buffer.from('{"n":1}'))) ?? '';
      const v2 = (await driver.putIfMatch(key, Buffer.from('{"n":2}'), v1)) ?? '';
      expect(await driver.deleteIfMatch(key, v1)).toBe(false);
      expect(await readAll(await driver.get(key))).toEqual(Buffer.from('{"n":2}'));
      expect(await driver.deleteIfMatch(key, v2)).toBe(true);
      expect(await driver.stat(key)).toBeUndefined();
      expect(await driver.deleteIfMatch(key, v2)).toBe(false);
    });

    it('where the store honours conditional writes, of many concurrent contenders exactly one wins', async () => {
      if (!driver.conditionalWrites) return; // emulated: only sequential use is exact (see above)
      const key = `${uniqueName('race')}/lock.json`;
      const created = await Promise.all(Array.from({ length: 8 }, (_, i) => driver.putIfAbsent(key, Buffer.from(`{"c":${i}}`))));
      expect(created.filter((v) => v !== undefined)).toHaveLength(1);
      const current = (await driver.getVersioned(key))?.version ?? '';
      const replaced = await Promise.all(Array.from({ length: 8 }, (_, i) => driver.putIfMatch(key, Buffer.from(`{"r":${i}}`), current)));
      expect(replaced.filter((v) => v !== undefined)).toHaveLength(1);
      const latest = (await driver.getVersioned(key))?.version ?? '';
      const deleted = await Promise.all(Array.from({ length: 8 }, () => driver.deleteIfMatch(key, latest)));
      expect(deleted.filter(Boolean)).toHaveLength(1);
    });
  });
}
