// Restores that must not half-apply a bad archive or fail silently, through the real CLI into real
// throwaway MariaDB servers: a flipped byte is found before a good copy is touched; a target
// killed mid-restore gives one line, not the statement; flags that need --datadir are refused;
// a schema holding only a routine counts as data; a running server's datadir reached through a
// symlinked parent is never moved aside.
import { readFile, symlink, writeFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { agent, freshServer, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName, writeConfig } from '../helpers.ts';

const TABLES = ['customers', 'orders', 'audit'];
const checksums = (run: (sql: string) => Promise<string>, schema: string) => run(`CHECKSUM TABLE ${TABLES.map((t) => `\`${schema}\`.${t}`).join(', ')} EXTENDED`);
const entry = (name: string, server: Sandbox) =>
  [`  - name: ${name}`, '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw'].join('\n');

let schema: string;
let store: string;
let dir: string;
let target: Sandbox;
let config: string;

beforeAll(async () => {
  schema = uniqueName('safe').replace('-', '_');
  await sourceSql(sampleDataSql(schema, 1500));
  dir = await testDir('restore-safety');
  store = join(dir, 'store');
  target = await freshServer('safety-target');
  config = await writeConfig(
    dir,
    ['compression: { algorithm: none }', 'storage:', '  type: local', `  path: ${store}`, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, entry('target', target), ''].join('\n'),
  );
});

afterAll(async () => {
  await target?.stop();
});

async function backup(): Promise<{ id: string; key: string }> {
  const result = await agent(['--config', config, 'run-now', '--database', 'source', '--json'], sourceEnv());
  expect(result.exitCode).toBe(0);
  const [manifest] = JSON.parse(result.stdout) as { id: string; objects: { key: string }[] }[];
  return { id: manifest?.id ?? '', key: manifest?.objects[0]?.key ?? '' };
}

/** Flips one byte in the middle of a stored object (local storage: a plain file). */
async function flipByte(key: string): Promise<void> {
  const path = join(store, key);
  const bytes = await readFile(path);
  const middle = Math.floor(bytes.length / 2);
  bytes[middle] = (bytes[middle] ?? 0) ^ 0x20;
  await writeFile(path, bytes);
}

describe('restore safety', () => {
  it('a flipped byte is found before a good copy is overwritten: exit 1, checksum mismatch, the target unchanged', async () => {
    const good = await backup();
    const first = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--backup', good.id], sourceEnv());
    expect(first.exitCode).toBe(0);
    const before = await checksums(target.sql, schema);
    await target.sql(`UPDATE \`${schema}\`.customers SET note = 'changed on the target' WHERE id % 3 = 0`);
    const changed = await checksums(target.sql, schema);
    expect(changed).not.toBe(before);

    const bad = await backup();
    await flipByte(bad.key);
    const result = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--backup', bad.id, '--yes'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`error: restore into target: ${bad.key.replace(/[.]/g, '\\.')}: checksum mismatch: SHA-256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}; nothing was written\n`),
    );
    expect(await checksums(target.sql, schema)).toBe(changed);
  });

  it('a corrupt archive into an empty target names the checksum mismatch, in one line, and no row data', async () => {
    const bad = await backup();
    await flipByte(bad.key);
    const empty = await freshServer('safety-empty');
    try {
      const cfg = await writeConfig(await testDir('safety-empty'), (await readFile(config, 'utf8')) + entry('empty', empty) + '\n');
      const result = await agent(['--config', cfg, 'restore', '--database', 'source', '--target', 'empty', '--backup', bad.id], sourceEnv());
      expect(result.exitCode).toBe(1);
      const errorLines = result.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(errorLines).toHaveLength(1);
      expect(errorLines[0]).toContain('error: restore into empty: ');
      expect(errorLines[0]).toContain(': checksum mismatch: SHA-256');
      expect(result.stderr).toContain(`hint: the schemas were empty, so the backup was applied as it streamed; schema ${schema} of empty may be partly restored from a corrupt archive`);
      expect(result.stderr).not.toMatch(/example\.com|INSERT INTO|Customer \d/);
      expect(result.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(3);
    } finally {
      await empty.stop();
    }
  });

  it('a target killed mid-restore: one line naming the lost connection, exit 1, no rows or hex', async () => {
    const big = uniqueName('big').replace('-', '_');
    await sourceSql(sampleDataSql(big, 40000));
    const bigConfig = await writeConfig(await testDir('safety-big'), (await readFile(config, 'utf8')).replace(`schemas: [${schema}]`, `schemas: [${big}]`));
    const result0 = await agent(['--config', bigConfig, 'run-now', '--database', 'source'], sourceEnv());
    expect(result0.exitCode).toBe(0);
    const victim = await freshServer('safety-victim');
    const cfg = await writeConfig(await testDir('safety-victim'), (await readFile(bigConfig, 'utf8')) + entry('victim', victim) + '\n');
    const running = agent(['--config', cfg, 'restore', '--database', 'source', '--target', 'victim'], sourceEnv());
    // Kill once the big table is being loaded.
    for (let i = 0; i < 600; i++) {
      const rows = await victim.sql(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '${big}' AND table_name = 'orders'`).catch(() => '0');
      if (rows === '1') break;
      await sleep(20);
    }
    process.kill(victim.pid, 'SIGKILL');
    const result = await running;
    await victim.stop();
    expect(result.exitCode).toBe(1);
    const lines = result.stderr.split('\n').filter((l) => !l.startsWith('Selected ') && l !== '');
    expect(lines[0], result.stderr).toMatch(/^error: restore into victim: mariadb exited with code 1: ERROR 20(13|06) \(HY000\) at line \d+: (Lost connection to server during query|Server has gone away)$/);
    expect(lines.length).toBeLessThanOrEqual(3);
    expect(result.stderr).not.toMatch(/[0-9A-F]{64}|example\.com|INSERT INTO|Customer \d/);
  });

  it('refuses --verify and --replace-datadir without --datadir (usage, exit 2)', async () => {
    for (const flag of ['--verify', '--replace-datadir']) {
      const result = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', flag], sourceEnv());
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`error: ${flag} needs --datadir: it applies to a restore into a datadir`);
    }
  });

  it('a schema that holds only a routine counts as data: refused without --yes', async () => {
    const other = await freshServer('safety-routine');
    try {
      await other.sql(`CREATE DATABASE \`${schema}\`; CREATE PROCEDURE \`${schema}\`.keep_me() SELECT 1`);
      const cfg = await writeConfig(await testDir('safety-routine'), (await readFile(config, 'utf8')) + entry('other', other) + '\n');
      const fresh = await backup();
      const result = await agent(['--config', cfg, 'restore', '--database', 'source', '--target', 'other', '--backup', fresh.id], sourceEnv());
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: restore into other: schema ${schema} (1 routine) already holds data`);
      expect(await other.sql(`SELECT routine_name FROM information_schema.routines WHERE routine_schema = '${schema}'`)).toBe('keep_me');
      expect(await other.sql(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '${schema}'`)).toBe('0');
    } finally {
      await other.stop();
    }
  });

  it("never moves a running server's datadir aside, even through a symlinked parent", async () => {
    const physical = await writeConfig(await testDir('safety-physical'), (await readFile(config, 'utf8')).replace(`    schemas: [${schema}]\n`, ''));
    const full = await agent(['--config', physical, 'run-now', '--database', 'source', '--type', 'full'], sourceEnv());
    expect(full.exitCode).toBe(0);
    const live = await freshServer('safety-live');
    try {
      const link = join(await testDir('safety-link'), 'parent');
      await symlink(dirname(live.datadir), link);
      const before = (await readdir(live.datadir)).sort();
      const result = await agent(['--config', physical, 'restore', '--database', 'source', '--datadir', join(link, 'data'), '--replace-datadir'], sourceEnv());
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: restore into ${join(link, 'data')}: a process runs in it (pid ${live.pid}); stop the server first`);
      expect((await readdir(live.datadir)).sort()).toEqual(before);
      expect(await live.sql('SELECT 1')).toBe('1');
      expect((await readdir(dirname(live.datadir))).filter((f) => f.includes('before-restore'))).toEqual([]);
    } finally {
      await live.stop();
    }
  });
});
