// An idle server restores "to now": while the capture is connected and caught up it records, at
// most once per complete_mark_interval, that the archive is complete through now. Real parts: a
// throwaway MariaDB, the real mariadb-binlog, `agent run-now`/`binlog list`/`restore` as CLI
// processes; the capture runs in-process around a counting double of the real local driver, to
// count the requests an idle capture makes (the interval shortened to 1 s: ≤ 1 per interval).
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBinlogCapture } from '../../src/binlog/capture.ts';
import { withCompaction } from '../../src/binlog/compaction-loop.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import type { ObjectInfo, PutOptions } from '../../src/storage/driver.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { openStorage } from '../../src/storage/open.ts';
import { freePort } from '../harness/child-process.ts';
import { agent, freshServer, storageYaml, testDir, writeConfig } from '../helpers.ts';

/** A named double: the real driver underneath, every request counted by method and key. */
class CountingDriver extends ForwardingDriver {
  readonly calls: { method: string; key: string }[] = [];
  #count<T>(method: string, key: string, result: T): T {
    this.calls.push({ method, key });
    return result;
  }
  override put(key: string, body: Readable, options?: PutOptions) {
    return this.#count('put', key, super.put(key, body, options));
  }
  override get(key: string, options?: { signal?: AbortSignal }) {
    return this.#count('get', key, super.get(key, options));
  }
  override getVersioned(key: string) {
    return this.#count('getVersioned', key, super.getVersioned(key));
  }
  override stat(key: string) {
    return this.#count('stat', key, super.stat(key));
  }
  override list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.#count('list', prefix, super.list(prefix));
  }
  override listPrefixes(prefix: string): AsyncIterable<string> {
    return this.#count('listPrefixes', prefix, super.listPrefixes(prefix));
  }
  override delete(key: string) {
    return this.#count('delete', key, super.delete(key));
  }
  override putIfAbsent(key: string, data: Buffer) {
    return this.#count('putIfAbsent', key, super.putIfAbsent(key, data));
  }
  override putIfMatch(key: string, data: Buffer, version: string) {
    return this.#count('putIfMatch', key, super.putIfMatch(key, data, version));
  }
  override deleteIfMatch(key: string, version: string) {
    return this.#count('deleteIfMatch', key, super.deleteIfMatch(key, version));
  }
}

let dir: string;
let server: Sandbox;
let config: string;

beforeAll(async () => {
  dir = await testDir('binlog-complete');
  server = await startSandbox({ dir: join(dir, 'server'), port: await freePort(), serverId: 61 });
  await server.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(40)) ENGINE=InnoDB; INSERT INTO shop.t (v) VALUES ('in the base')");
  config = await writeConfig(
    dir,
    [
      'storage:',
      await storageYaml('local'),
      'databases:',
      '  - name: idle',
      `    socket: ${server.socket}`,
      '    user: root',
      '    schemas: [shop]',
      `    binlog: { enabled: true, segment_age: 200ms, complete_mark_interval: 1s, spool_dir: ${join(dir, 'spool')} }`,
      '',
    ].join('\n'),
  );
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('complete-through marker', () => {
  it('an idle capture moves the last recoverable time to now with at most one request per interval, and a restore to it is accepted', async () => {
    expect((await agent(['--config', config, 'run-now'])).exitCode).toBe(0);
    await server.sql("INSERT INTO shop.t (v) VALUES ('after the base')");

    const loaded = loadConfig(config, process.env);
    const database = loaded.databases[0]!;
    const storage = new CountingDriver(await openStorage(database.storage));
    const controller = new AbortController();
    const markers: string[] = [];
    let segments = 0;
    // With compaction beside it, as the daemon runs it: on an idle archive it adds no request.
    const logger = pino({ level: 'silent' });
    const capture = withCompaction({ storage, database, log: logger, signal: controller.signal }, (compaction) =>
      runBinlogCapture({
        config: loaded,
        database,
        storage,
        logger,
        signal: controller.signal,
        onSegment: () => {
          segments++;
          compaction.notify();
        },
        onComplete: (marker) => markers.push(marker.through),
      }),
    );
    try {
      for (let i = 0; i < 200 && (segments === 0 || markers.length === 0); i++) await sleep(100);
      expect(segments).toBeGreaterThan(0);
      expect(markers.length).toBeGreaterThan(0);

      // The idle window: nothing but the marker, at most once per interval (1 s here, 90 s by default);
      // compaction waits for the segment's window to close (≥ 5 min), so it makes no request here.
      const moment = Date.now();
      storage.calls.length = 0;
      await sleep(4500);
      const calls = [...storage.calls];
      expect(calls.length).toBeGreaterThanOrEqual(2);
      expect(calls.length).toBeLessThanOrEqual(5);
      expect(calls.every((c) => c.method === 'put' && c.key === 'idle/binlog/complete-through.json')).toBe(true);

      const listed = await agent(['--config', config, 'binlog', 'list', '--json']);
      const [summary] = JSON.parse(listed.stdout) as { lastRecoverableAt: string; runs: { to: { at: string } }[]; gaps: unknown[]; completeThrough: { through: string } }[];
      expect(summary?.gaps).toEqual([]);
      expect(Date.parse(summary!.lastRecoverableAt)).toBeGreaterThanOrEqual(Math.floor(moment / 1000) * 1000);
      expect(Date.parse(summary!.lastRecoverableAt)).toBeGreaterThan(Date.parse(summary!.runs.at(-1)!.to.at));
      expect(summary!.completeThrough.through).toBe(summary!.lastRecoverableAt);

      // A point-in-time restore to that moment, well after the last event, is planned and replayed.
      const target = await freshServer('complete-target');
      try {
        const targetConfig = await writeConfig(await testDir('complete-target'), await readFile(config, 'utf8'));
        await appendFile(targetConfig, ['  - name: target', '    host: 127.0.0.1', `    port: ${target.port}`, '    user: agent', '    password: target-pw', ''].join('\n'));
        const restored = await agent(['--config', targetConfig, 'restore', '--database', 'idle', '--target', 'target', '--no-binlog', '--to-time', summary!.lastRecoverableAt]);
        expect(restored.stderr).not.toContain('past the end of the binlog archive');
        expect(restored.exitCode).toBe(0);
        expect(await target.sql('SELECT v FROM shop.t ORDER BY id')).toBe('in the base\nafter the base');
      } finally {
        await target.stop();
      }
    } finally {
      controller.abort();
      await capture;
    }
  }, 120_000);
});
