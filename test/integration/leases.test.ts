// Leases and local-storage failures through the real CLI: `agent prune` looping beside `agent
// run-now` with orphan_grace 0s never takes a completed backup's data (local directory and
// s3rver); a second `agent binlog capture` on the same archive exits 3 naming the holder; a
// failed backup leaves no empty directory (and prune removes those a crash left); a storage path
// that is a file or cannot be created fails at once.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/listing.ts';
import { loadConfig } from '../../src/config/load.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { openStorage } from '../../src/storage/open.ts';
import { freePort } from '../harness/child-process.ts';
import { agent, AGENT, FIXTURES, sourceConnectionYaml, sourceEnv, sourceSql, storageYaml, testDir, uniqueName, writeConfig, type CliResult, type StorageKind } from '../helpers.ts';

const schema = uniqueName('lease').replace('-', '_');
beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 100));
});

async function setup(name: string, storage: string, extra: string[] = []): Promise<{ config: string; dir: string }> {
  const dir = await testDir(name);
  const config = await writeConfig(
    dir,
    ['storage:', storage, ...extra, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, '    retention: {}', ''].join('\n'),
  );
  return { config, dir };
}

/** Every listed backup's data objects, read back from the store: size and SHA-256 as the manifest says. */
async function assertDataIntact(config: string): Promise<string[]> {
  const loaded = loadConfig(config, { ...process.env, ...sourceEnv() });
  const database = loaded.databases[0];
  if (!database) throw new Error('no database');
  const storage = await openStorage(database.storage);
  try {
    const { backups, unreadable } = await listBackups(storage, 'source');
    expect(unreadable).toEqual([]);
    for (const backup of backups) {
      for (const object of backup.objects) {
        const hash = createHash('sha256');
        let size = 0;
        for await (const chunk of await storage.get(object.key)) {
          hash.update(chunk as Buffer);
          size += (chunk as Buffer).length;
        }
        expect({ key: object.key, size, sha256: hash.digest('hex') }).toEqual({ key: object.key, size: object.sizeBytes, sha256: object.sha256 });
      }
    }
    return backups.map((b) => b.id);
  } finally {
    await storage.close();
  }
}

describe.each<StorageKind>(['local', 's3'])('prune looping beside run-now with orphan_grace 0s, %s storage', (kind) => {
  it('every run-now exits 0, is listed, and its data is intact', async () => {
    // A dump that pauses before it writes: the upload (a local .partial) is open meanwhile.
    const { config } = await setup(`prune-loop-${kind}`, await storageYaml(kind), ['prune: { orphan_grace: 0s }', 'tools:', `  dump: ${join(FIXTURES, 'slow-dump.sh')}`]);
    const env = { ...sourceEnv(), SLOW_DUMP_SECONDS: '1' };
    let running = true;
    const prunes: CliResult[] = [];
    const loop = (async () => {
      while (running) prunes.push(await agent(['--config', config, 'prune'], env));
    })();
    const runs: CliResult[] = [];
    try {
      for (let i = 0; i < 6; i++) runs.push(await agent(['--config', config, 'run-now', '--json'], env));
    } finally {
      running = false;
      await loop;
    }
    for (const run of runs) expect({ exitCode: run.exitCode, stderr: run.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(prunes.length).toBeGreaterThan(0);
    for (const p of prunes) expect({ exitCode: p.exitCode, stderr: p.stderr }).toMatchObject({ exitCode: 0 });
    const reported = runs.map((r) => (JSON.parse(r.stdout) as { id: string }[])[0]?.id);
    const listed = await assertDataIntact(config);
    expect([...listed].sort()).toEqual([...reported].sort());
  });
});

describe('one writer per binlog archive', () => {
  it('a second `agent binlog capture` exits 3 naming the holder; the first stops cleanly and releases it', async () => {
    const store = await testDir('binlog-lease-store');
    const { config, dir } = await setup('binlog-lease', `  type: local\n  path: ${store}`);
    const withBinlog = async (spool: string) => {
      const path = join(dir, `${spool}.yaml`);
      await writeFile(path, (await readFile(config, 'utf8')).replace('    retention: {}', `    retention: {}\n    binlog: { enabled: true, segment_age: 1s, spool_dir: ${join(dir, spool)} }`));
      return path;
    };
    const first = execa(process.execPath, [AGENT, '--config', await withBinlog('spool-a'), 'binlog', 'capture'], { env: sourceEnv(), reject: false, stdin: 'ignore' });
    let exited = false;
    void first.then(() => (exited = true));
    const lease = join(store, 'source', 'leases', 'binlog.json');
    for (let i = 0; !existsSync(lease); i++) {
      if (exited || i > 300) {
        first.kill('SIGTERM');
        throw new Error(`the first capture took no lease: ${String((await first).stderr)}`);
      }
      await sleep(100);
    }
    const second = await agent(['--config', await withBinlog('spool-b'), 'binlog', 'capture'], sourceEnv());
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toMatch(
      new RegExp(`^error: source: the binlog archive of source is locked: binlog capture by ${hostname().replace(/\./g, '\\.')} \\(pid ${first.pid}\\) since \\d{4}-\\d\\d-\\d\\dT`, 'm'),
    );
    expect(second.stderr).toContain('hint: wait for it to finish; if that process is gone, the lock expires at ');
    first.kill('SIGTERM');
    const ended = await first;
    expect({ exitCode: ended.exitCode, stderr: String(ended.stderr) }).toMatchObject({ exitCode: 0 });
    expect(existsSync(lease)).toBe(false);
  });

  it('a daemon whose archive another writer holds reports the capture as failed, naming the holder, and keeps running', async () => {
    const store = await testDir('binlog-lease-daemon-store');
    const holder = { owner: 'db2:4242:x', host: 'db2.example.com', pid: 4242, purpose: 'binlog capture', acquiredAt: '2026-11-30T08:00:00.000Z', expiresAt: new Date(Date.now() + 600_000).toISOString() };
    await mkdir(join(store, 'source', 'leases'), { recursive: true });
    await writeFile(join(store, 'source', 'leases', 'binlog.json'), JSON.stringify(holder));
    const port = await freePort();
    const { config, dir } = await setup('binlog-lease-daemon', `  type: local\n  path: ${store}`, ['daemon:', `  listen_port: ${port}`, '  catch_up: false']);
    await writeFile(config, (await readFile(config, 'utf8')).replace('    retention: {}', `    retention: {}\n    binlog: { enabled: true, spool_dir: ${join(dir, 'spool')} }`));
    const daemon = execa(process.execPath, [AGENT, '--config', config, 'daemon'], { env: sourceEnv(), reject: false, stdin: 'ignore' });
    try {
      let error: string | null | undefined;
      for (let i = 0; !error; i++) {
        if (i > 300) throw new Error('the daemon reported no binlog error');
        await sleep(100);
        const status = (await fetch(`http://127.0.0.1:${port}/status`).then((r) => r.json()).catch(() => undefined)) as { binlog?: Record<string, { error: string | null; connected: boolean }> } | undefined;
        error = status?.binlog?.['source']?.error;
        if (error) expect(status?.binlog?.['source']?.connected).toBe(false);
      }
      expect(error).toBe('the binlog archive of source is locked: binlog capture by db2.example.com (pid 4242) since 2026-11-30T08:00:00.000Z');
      expect(JSON.parse(await readFile(join(store, 'source', 'leases', 'binlog.json'), 'utf8'))).toEqual(holder);
    } finally {
      daemon.kill('SIGTERM');
    }
    expect((await daemon).exitCode).toBe(0);
  });
});

describe('local storage directories and roots', () => {
  it('a failed backup leaves no empty directory; prune removes one a crashed run left', async () => {
    const store = await testDir('empty-dirs-store');
    const { config } = await setup('empty-dirs', `  type: local\n  path: ${store}`, ['tools:', `  dump: ${join(FIXTURES, 'failing-dump.sh')}`]);
    const failed = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(failed.exitCode).toBe(1);
    expect(existsSync(join(store, 'source')) ? await readdir(join(store, 'source')) : []).toEqual([]);

    const crashed = join(store, 'source', '20260101T000000.000Z-abcdef');
    await mkdir(crashed, { recursive: true });
    await utimes(crashed, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const pruned = await agent(['--config', config, 'prune', '--json'], sourceEnv());
    expect(pruned.exitCode).toBe(0);
    expect(existsSync(crashed)).toBe(false);
  });

  it('list on a storage path that is a regular file fails instead of printing "no backups"', async () => {
    const file = join(await testDir('file-root'), 'backups');
    await writeFile(file, 'not a directory');
    const { config } = await setup('file-root-config', `  type: local\n  path: ${file}`);
    const result = await agent(['--config', config, 'list'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stdout).not.toContain('no backups');
    expect(result.stderr).toContain(`list backups in ${file}: ENOTDIR: storage path ${file} is not a directory`);
  });

  it('run-now into a storage path the kernel refuses (/proc/x) fails at once instead of spinning', async () => {
    const { config } = await setup('proc-root', '  type: local\n  path: /proc/x');
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^error: source: .*ENOENT: no such file or directory, mkdir '\/proc\/x'/m);
    expect(result.stderr).toContain('hint: the storage path cannot be created there: fix path: in the storage configuration');
  });
});
