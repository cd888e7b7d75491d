// Gaps in the binlog archive, made for real on a throwaway MariaDB while `agent binlog capture`
// is stopped: binlogs purged before the capture got them (the capture says so, goes on at the
// oldest file the server has, and `binlog list` shows the gap), and a reset of the numbering
// (RESET MASTER: a new mysql-bin.000001), which the capture refuses to mix into the archive.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort } from '../harness/child-process.ts';
import { AGENT, agent, storageYaml, testDir, writeConfig } from '../helpers.ts';

let dir: string;
let server: Sandbox;
let config: string;

interface Summary {
  segments: number;
  runs: { from: { file: string; position: number }; to: { file: string; position: number } }[];
  gaps: { after: string; before: string; reason: string }[];
}

const archive = async (): Promise<Summary> => (JSON.parse((await agent(['--config', config, 'binlog', 'list', '--json'])).stdout) as Summary[])[0] as Summary;

/** Runs `agent binlog capture` until the archive reaches the server's current position, then stops it. */
async function captureUntilCaughtUp(): Promise<{ exitCode: number | undefined; output: string }> {
  const child: ResultPromise = execa(process.execPath, [AGENT, '--config', config, '--log-level', 'info', 'binlog', 'capture'], { reject: false, stdin: 'ignore', all: true });
  let exited = false;
  void child.then(() => (exited = true));
  const [file, position] = (await server.sql('SHOW MASTER STATUS')).split('\t');
  for (let i = 0; i < 150 && !exited; i++) {
    const end = (await archive()).runs.at(-1)?.to;
    if (end !== undefined && end.file === file && end.position >= Number(position)) break;
    await sleep(100);
  }
  child.kill('SIGTERM');
  const result = await child;
  return { exitCode: result.exitCode, output: String(result.all) };
}

beforeAll(async () => {
  dir = await testDir('binlog-gaps');
  server = await startSandbox({ dir: join(dir, 'server'), port: await freePort(), serverId: 41 });
  await server.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(20)) ENGINE=InnoDB');
  config = await writeConfig(
    dir,
    [
      'storage:',
      await storageYaml('local'),
      'databases:',
      '  - name: gaps',
      `    socket: ${server.socket}`,
      '    user: root',
      `    binlog: { enabled: true, segment_age: 200ms, spool_dir: ${join(dir, 'spool')} }`,
      '',
    ].join('\n'),
  );
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('binlog archive gaps', () => {
  it('binlogs purged before capture: the capture names the gap and goes on; binlog list shows it', async () => {
    await server.sql("INSERT INTO shop.t (v) VALUES ('one')");
    const first = await captureUntilCaughtUp();
    expect(first.exitCode).toBe(0);
    const archivedFile = (await archive()).runs[0]?.to.file ?? '';

    // While capture is down: more writes, two rotations, and the files it has not read purged.
    await server.sql("INSERT INTO shop.t (v) VALUES ('lost'); FLUSH BINARY LOGS; INSERT INTO shop.t (v) VALUES ('lost too'); FLUSH BINARY LOGS");
    const current = (await server.sql('SHOW MASTER STATUS')).split('\t')[0] ?? '';
    await server.sql(`PURGE BINARY LOGS TO '${current}'; INSERT INTO shop.t (v) VALUES ('after')`);

    const second = await captureUntilCaughtUp();
    expect(second.exitCode).toBe(0);
    expect(second.output).toContain(`binlog ${archivedFile} is no longer on the server (purged before it was captured): the archive has a gap; capture continues at `);
    const summary = await archive();
    // MariaDB may keep a file PURGE asked for while it still needs it (its binlog checkpoint): the
    // capture then goes on at that one, and the gap is the end of the file it had not finished.
    const oldest = /capture continues at ([^"\s]+)/.exec(second.output)?.[1] ?? '';
    expect(summary.runs.map((r) => r.from.file)).toEqual([archivedFile, oldest]);
    expect(summary.gaps).toHaveLength(1);
    expect(summary.gaps[0]?.reason).toMatch(
      oldest === current
        ? /^binlog files between .* are missing \(purged before they were captured\?\)$/
        : new RegExp(`^the capture went on at ${oldest} without the end of ${archivedFile} \\(archived up to \\d+; purged before it was captured\\?\\)$`),
    );
  });

  it('a reset of the binlog numbering is refused, the archive left as it was', async () => {
    const before = await archive();
    await sleep(1100); // the new mysql-bin.000001 gets another creation second than the archived one
    await server.sql("RESET MASTER; INSERT INTO shop.t (v) VALUES ('new lineage')");
    const result = await captureUntilCaughtUp();
    expect(result.exitCode).toBe(1);
    expect(result.output).toMatch(/error: gaps: binlog capture of gaps: mysql-bin\.000001 on the server was created at \S+, the archived mysql-bin\.000001 at \S+: the server's binlog numbering was reset/);
    expect(result.output).toContain('hint: archive this server under a new database name');
    expect((await archive()).segments).toBe(before.segments);
  });

  it('spool_dir set to the backup store itself: the capture works in its own marked subdirectory and deletes nothing of the store', async () => {
    const store = await testDir('spool-is-store');
    await writeFile(join(store, 'keep-me'), 'a backup of something else');
    const shared = await writeConfig(
      await testDir('spool-is-store-config'),
      ['storage:', '  type: local', `  path: ${store}`, 'databases:', '  - name: gaps', `    socket: ${server.socket}`, '    user: root', `    binlog: { enabled: true, segment_age: 200ms, spool_dir: ${store} }`, ''].join('\n'),
    );
    await server.sql("INSERT INTO shop.t (v) VALUES ('spool test')");
    const child = execa(process.execPath, [AGENT, '--config', shared, 'binlog', 'capture'], { reject: false, stdin: 'ignore', all: true });
    for (let i = 0; i < 150; i++) {
      const listed = await agent(['--config', shared, 'binlog', 'list', '--json']);
      if (((JSON.parse(listed.stdout) as Summary[])[0]?.segments ?? 0) > 0) break;
      await sleep(100);
    }
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
    expect(await readFile(join(store, 'keep-me'), 'utf8')).toBe('a backup of something else');
    expect(await readdir(join(store, 'binlog-spool.gaps'))).toContain('.backup-agent-spool');
    expect((JSON.parse((await agent(['--config', shared, 'binlog', 'list', '--json'])).stdout) as Summary[])[0]?.segments).toBeGreaterThan(0);
  });

  it('a spool directory that holds files and no marker is refused, naming it; nothing in it is deleted', async () => {
    const root = await testDir('spool-foreign');
    await mkdir(join(root, 'binlog-spool.gaps'));
    await writeFile(join(root, 'binlog-spool.gaps', 'precious'), 'data');
    const foreign = await writeConfig(
      await testDir('spool-foreign-config'),
      ['storage:', await storageYaml('local'), 'databases:', '  - name: gaps', `    socket: ${server.socket}`, '    user: root', `    binlog: { enabled: true, spool_dir: ${root} }`, ''].join('\n'),
    );
    const result = await agent(['--config', foreign, 'binlog', 'capture']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      `error: gaps: prepare binlog spool ${join(root, 'binlog-spool.gaps')}: the directory is not empty and has no .backup-agent-spool marker: it is not the agent's spool, and the capture deletes its spool's content`,
    );
    expect(result.stderr).toContain('hint: point binlog.spool_dir at a directory the agent may create its own subdirectory in');
    expect(await readFile(join(root, 'binlog-spool.gaps', 'precious'), 'utf8')).toBe('data');
  });
});
