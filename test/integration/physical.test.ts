// Physical backups with the real mariadb-backup against the harness MariaDB under a concurrent
// write load: a full, then two incrementals with writes in between; the chain restored into a new
// datadir starts as a server whose tables equal the source's at the last incremental.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { AGENT, agent, sourceConnectionYaml, sourceEnv, sourceSql, storageYaml, testDir, uniqueName, writeConfig } from '../helpers.ts';

const schema = uniqueName('phys').replace('-', '_');
let config: string;
let dir: string;

async function checksums(run: (sql: string) => Promise<string>): Promise<string> {
  return run(`CHECKSUM TABLE \`${schema}\`.customers, \`${schema}\`.orders, \`${schema}\`.audit, \`${schema}\`.load_test EXTENDED`);
}

/** Inserts rows in a loop on its own connection until stopped: the concurrent write load. */
function writeLoad(): { stop(): Promise<number> } {
  let running = true;
  let rows = 0;
  const done = (async () => {
    const db = await mysql.createConnection({ host: '127.0.0.1', port: inject('mariadb').port, user: 'agent', password: inject('mariadb').password });
    try {
      while (running) {
        await db.query(`INSERT INTO \`${schema}\`.load_test (v) VALUES (REPEAT(MD5(RAND()), 8))`);
        rows++;
      }
    } finally {
      await db.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return rows;
    },
  };
}

beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 2000));
  await sourceSql(`CREATE TABLE \`${schema}\`.load_test (id BIGINT PRIMARY KEY AUTO_INCREMENT, v TEXT NOT NULL) ENGINE=InnoDB`);
  // --verify must quote names: a backtick and a space in one.
  await sourceSql(`CREATE TABLE \`${schema}\`.\`odd\`\`name x\` (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO \`${schema}\`.\`odd\`\`name x\` SELECT seq FROM \`${schema}\`.seq_1_to_5`);
  dir = await testDir('physical');
  config = await writeConfig(
    dir,
    ['storage:', await storageYaml('s3'), 'databases:', '  - name: source', sourceConnectionYaml(), '    physical: { max_chain_length: 5 }', ''].join('\n'),
  );
});

afterAll(async () => {
  await rm(join(dir, 'restored'), { recursive: true, force: true });
  await rm(join(dir, 'verified'), { recursive: true, force: true });
});

const runNow = async (type: string) => {
  const result = await agent(['--config', config, 'run-now', '--type', type, '--json'], sourceEnv());
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as { id: string; type: string; physical: { parent: string | null; fromLsn: string; toLsn: string; chainLength: number }; binlog: { file: string } | null }[])[0];
};

describe('physical backups (mariadb-backup)', () => {
  it('full + incrementals under write load restore into a datadir that equals the source', async () => {
    const load = writeLoad();
    await sleep(300);
    const full = await runNow('full');
    await sleep(300);
    const inc1 = await runNow('incremental');
    await sleep(300);
    const rows = await load.stop();
    expect(rows).toBeGreaterThan(10);
    await sourceSql(`UPDATE \`${schema}\`.customers SET note = 'after inc1' WHERE id % 10 = 0`);
    const expected = await checksums(sourceSql);
    const inc2 = await runNow('incremental');

    expect(full).toMatchObject({ type: 'full', physical: { parent: null, chainLength: 1 } });
    expect(inc1).toMatchObject({ type: 'incremental', physical: { parent: full?.id, chainLength: 2, fromLsn: full?.physical.toLsn } });
    expect(inc2).toMatchObject({ type: 'incremental', physical: { parent: inc1?.id, chainLength: 3, fromLsn: inc1?.physical.toLsn } });
    expect(full?.binlog?.file).toMatch(/^mysql-bin\.\d{6}$/);

    const list = await agent(['--config', config, 'list'], sourceEnv());
    expect(list.stdout).toMatch(new RegExp(`${inc2?.id}\\s+source\\s+incremental\\s+manual\\s+.*completed\\s+-\\s+${inc1?.id}`));

    const datadir = join(dir, 'restored');
    const restored = await agent(['--config', config, 'restore', '--database', 'source', '--datadir', datadir], sourceEnv());
    expect(restored.exitCode).toBe(0);
    expect(restored.stdout).toContain(`restored full ${full?.id} + incremental ${inc1?.id} + incremental ${inc2?.id} of source`);

    const server = await startSandbox({ dir: join(dir, 'restored-server'), port: await freePort(), existingDatadir: datadir, serverId: 77 });
    try {
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }

    // --verify: the agent starts its own throwaway server on a fresh restore and checksums every table.
    const verified = await agent(['--config', config, 'restore', '--database', 'source', '--datadir', join(dir, 'verified'), '--verify'], sourceEnv());
    expect(verified.exitCode).toBe(0);
    expect(verified.stdout).toMatch(/verify: a throwaway server started on it; \d+ tables, CHECK TABLE and CHECKSUM TABLE:/);
    for (const line of expected.split('\n')) expect(verified.stdout).toContain(`  ${line}`);
    expect(verified.stdout).toContain('verified: every table checks OK and has a checksum');
    const odd = await sourceSql(`CHECKSUM TABLE \`${schema}\`.\`odd\`\`name x\` EXTENDED`);
    expect(verified.stdout).toContain(`  ${schema}.odd\`name x\t${odd.split('\t')[1]}`);

    const again = await agent(['--config', config, 'restore', '--database', 'source', '--datadir', datadir], sourceEnv());
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain(`error: restore into ${datadir}: the directory is not empty`);
    expect(again.stderr).toContain('hint: give a new, empty --datadir, or pass --replace-datadir');
  });

  it('retention keeps the chain a kept incremental needs', async () => {
    const keepLast = await writeConfig(await testDir('physical-prune'), (await import('node:fs')).readFileSync(config, 'utf8').replace('    physical:', '    retention: { manual: { keep_last: 1 } }\n    physical:'));
    const result = await agent(['--config', keepLast, 'prune', '--dry-run', '--json'], sourceEnv());
    const [plan] = JSON.parse(result.stdout) as { keep: { type: string; reasons: string[] }[] }[];
    expect(plan?.keep.map((k) => [k.type, k.reasons.map((r) => r.replace(/ \d{8}T.*$/, ''))])).toEqual([
      ['incremental', ['manual keep_last', 'newest successful']],
      ['incremental', ['needed by incremental']],
      ['full', ['needed by incremental']],
    ]);
  });

  it('a failing mariadb-backup leaves no manifest', async () => {
    const bad = await writeConfig(await testDir('physical-bad'), (await import('node:fs')).readFileSync(config, 'utf8').replace('max_chain_length: 5', 'max_chain_length: 5, extra_args: ["--no-such-option"]'));
    const before = JSON.parse((await agent(['--config', bad, 'list', '--json'], sourceEnv())).stdout) as unknown[];
    const result = await agent(['--config', bad, 'run-now', '--type', 'full'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/error: source: back up database source with mariadb-backup: mariadb-backup exited with code \d+: .*unknown option '--no-such-option'/);
    expect(JSON.parse((await agent(['--config', bad, 'list', '--json'], sourceEnv())).stdout)).toHaveLength(before.length);
  });

  it('--verify fails, exit 1, naming a table the restored server cannot read', async () => {
    // ARCHIVE is a plugin the private verify server does not load (no grant tables, no mysql.plugin):
    // a real table it cannot checksum, which must fail the verification instead of printing NULL.
    await sourceSql(`INSTALL SONAME 'ha_archive'; CREATE TABLE \`${schema}\`.archived (id INT, v TEXT) ENGINE=ARCHIVE; INSERT INTO \`${schema}\`.archived VALUES (1, 'a')`);
    try {
      await runNow('full');
      const result = await agent(['--config', config, 'restore', '--database', 'source', '--datadir', join(dir, 'verify-fails'), '--verify'], sourceEnv());
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toContain(`  ${schema}.archived\tNULL`);
      expect(result.stderr).toContain(`error: verify ${join(dir, 'verify-fails')}: CHECK TABLE ${schema}.archived: `);
      expect(result.stderr).toContain(`CHECKSUM TABLE ${schema}.archived: NULL (the server cannot read the table)`);
    } finally {
      await sourceSql(`DROP TABLE \`${schema}\`.archived; UNINSTALL SONAME 'ha_archive'`);
      await rm(join(dir, 'verify-fails'), { recursive: true, force: true });
    }
  });

  it('kill -9 of `restore --verify` takes its throwaway server with it (no server without grant checks is left on the restored datadir)', async () => {
    await runNow('full');
    const target = join(dir, 'verify-killed');
    const run = execa(process.execPath, [AGENT, '--config', config, 'restore', '--database', 'source', '--datadir', target, '--verify'], { env: sourceEnv(), reject: false, stdin: 'ignore' });
    try {
      // The verify server: a mariadbd whose option file lives in the agent's private verify directory.
      let server: number | undefined;
      const deadline = Date.now() + 90_000;
      while (server === undefined && Date.now() < deadline) {
        server = await verifyServer();
        if (server === undefined) await sleep(10);
      }
      if (server === undefined) throw new Error('the verify server was never seen running');
      run.kill('SIGKILL');
      await run;
      const gone = Date.now() + 10_000;
      while ((await verifyServer()) === server && Date.now() < gone) await sleep(50);
      expect(await verifyServer()).toBeUndefined();
    } finally {
      run.kill('SIGKILL');
      await rm(target, { recursive: true, force: true });
    }
  });
});

/** The pid of a running mariadbd started by a `restore --verify` (its option file is in a backup-agent-verify- directory). */
async function verifyServer(): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const [program = '', ...args] = cmdline.split('\0');
    if (program.endsWith('mariadbd') && args.some((a) => a.includes('backup-agent-verify-'))) return Number(entry);
  }
  return undefined;
}
