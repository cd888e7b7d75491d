// The capture deletes its spool's content at every (re)connect, so it must only ever delete what is
// provably its own: a dedicated subdirectory with a marker, never a directory it did not create.
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSpool, SPOOL_MARKER } from '../../src/binlog/spool.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { configSchema } from '../../src/config/schema.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';

function database(spool_dir?: string): DatabaseConfig {
  const raw = configSchema.parse({ storage: { type: 'local', path: '/x' }, databases: [{ name: 'shop', binlog: { enabled: true, ...(spool_dir ? { spool_dir } : {}) } }] });
  return normalizeConfig(raw).config.databases[0] as DatabaseConfig;
}

const scratch = () => mkdtemp(join(tmpdir(), 'spool-test-'));

describe('binlog spool', () => {
  it('spool_dir pointing at a backup store: the capture works in its own marked subdirectory and deletes nothing else', async () => {
    const store = await scratch();
    await mkdir(join(store, 'shop', '20261121T101500.000Z-abcdef'), { recursive: true });
    await writeFile(join(store, 'shop', '20261121T101500.000Z-abcdef', 'manifest.json'), '{}');
    const spool = await openSpool(database(store), {});
    expect(spool.dir).toBe(join(store, 'binlog-spool.shop'));
    await writeFile(join(spool.dir, 'mysql-bin.000001'), 'x'.repeat(10));
    expect(await spool.bytes()).toBe(10);
    await spool.clear();
    await spool.dispose();
    expect(await readdir(spool.dir)).toEqual([SPOOL_MARKER]);
    expect((await stat(spool.dir)).mode & 0o777).toBe(0o700);
    expect(await readFile(join(store, 'shop', '20261121T101500.000Z-abcdef', 'manifest.json'), 'utf8')).toBe('{}');
  });

  it('refuses a non-empty spool directory without the marker, naming it, and deletes nothing', async () => {
    const root = await scratch();
    const dir = join(root, 'binlog-spool.shop');
    await mkdir(dir);
    await writeFile(join(dir, 'precious'), 'data');
    await expect(openSpool(database(root), {})).rejects.toThrow(
      `prepare binlog spool ${dir}: the directory is not empty and has no ${SPOOL_MARKER} marker: it is not the agent's spool, and the capture deletes its spool's content`,
    );
    expect(await readFile(join(dir, 'precious'), 'utf8')).toBe('data');
  });

  it('stops deleting when its marker disappears', async () => {
    const spool = await openSpool(database(await scratch()), {});
    await writeFile(join(spool.dir, 'mysql-bin.000001'), 'x');
    await import('node:fs/promises').then((fs) => fs.rm(join(spool.dir, SPOOL_MARKER)));
    await expect(spool.clear()).rejects.toThrow(`its marker file ${SPOOL_MARKER} is gone: nothing in it is deleted`);
    expect(await readdir(spool.dir)).toEqual(['mysql-bin.000001']);
  });

  it('under systemd: in the state directory', async () => {
    const state = await scratch();
    const spool = await openSpool(database(), { STATE_DIRECTORY: `${state}:/other` });
    expect(spool.dir).toBe(join(state, 'binlog-spool.shop'));
  });

  it('with neither: a private, unpredictable temp directory (0700), removed when the capture ends', async () => {
    const a = await openSpool(database(), {});
    const b = await openSpool(database(), {});
    expect(a.dir).not.toBe(b.dir);
    expect(a.dir.startsWith(join(tmpdir(), `backup-agent-binlog-p${process.pid}-shop-`))).toBe(true);
    expect((await stat(a.dir)).mode & 0o777).toBe(0o700);
    await a.dispose();
    await b.dispose();
    await expect(stat(a.dir)).rejects.toThrow('ENOENT');
  });
});
