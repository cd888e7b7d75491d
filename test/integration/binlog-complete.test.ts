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
import { loadConfig } from '../../src/config/load.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import type { ObjectInfo, PutOptions, StorageDriver } from '../../src/storage/driver.ts';
import { openStorage } from '../../src/storage/open.ts';
import { freePort } from '../harness/child-process.ts';
import { agent, freshServer, storageYaml, testDir, writeConfig } from '../helpers.ts';

/** A named double: the real driver underneath, every request counted by method and key. */
class CountingDriver implements StorageDriver {
  readonly calls: { method: string; key: string }[] = [];
  readonly #inner: StorageDriver;
  constructor(inner: StorageDriver) {
    this.#inner = inner;
  }
  get location(): string {
    return this.#inner.location;
  }
  put(key: string, body: Readable, options?: PutOptions) {
    this.calls.push({ method: 'put', key });
    return this.#inner.put(key, body, options);
  }
  get(key: string, options?: { signal?: AbortSignal }) {
    this.calls.push({ method: 'get', key });
    return this.#inner.get(key, options);
  }
  stat(key: string) {
    this.calls.push({ method: 'stat', key });
    return this.#inner.stat(key);
  }
  list(prefix: string): AsyncIterable<ObjectInfo> {
    this.calls.push({ method: 'list', key: prefix });
    return this.#inner.list(prefix);
  }
  delete(key: string) {
    this.calls.push({ method: 'delete', key });
    return this.#inner.delete(key);
  }
  putIfAbsent(key: string, data: Buffer) {
    this.calls.push({ method: 'putIfAbsent', key });
    return this.#inner.putIfAbsent(key, data);
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
    const capture = runBinlogCapture({
      config: loaded,
      database,
      storage,
      logger: pino({ level: 'silent' }),
      signal: controller.signal,
      onSegment: () => segments++,
      onComplete: (marker) => markers.push(marker.through),
    });
    try {
      for (let i = 0; i < 200 && (segments === 0 || markers.length === 0); i++) await sleep(100);
      expect(segments).toBeGreaterThan(0);
      expect(markers.length).toBeGreaterThan(0);

      // The idle window: nothing but the marker, at most once per interval (1 s here, 1 min by default).
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
