// Physical backups from a replica (physical.replica: true): a real primary and a real replica
// started for this test, the backup taken from the replica by an account with only the grants
// README documents. The manifest records the primary's coordinates the replica had applied, the
// replica's SQL thread runs again afterwards, and the restored datadir holds the replicated data.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort } from '../harness/child-process.ts';
import { agent, storageYaml, testDir, writeConfig } from '../helpers.ts';

let dir: string;
let primary: Sandbox;
let replica: Sandbox;

async function caughtUp(): Promise<string> {
  const target = await primary.sql('SELECT @@gtid_binlog_pos');
  for (let i = 0; i < 200; i++) {
    const pos = await replica.sql('SELECT @@gtid_slave_pos');
    if (pos === target) return pos;
    await sleep(50);
  }
  throw new Error(`replica did not catch up to ${target}: ${await replica.sql('SHOW SLAVE STATUS')}`);
}

beforeAll(async () => {
  dir = await testDir('replica');
  primary = await startSandbox({ dir: join(dir, 'primary'), port: await freePort(), serverId: 11 });
  replica = await startSandbox({ dir: join(dir, 'replica'), port: await freePort(), serverId: 12 });
  await primary.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  await replica.sql(
    `CHANGE MASTER TO master_host='127.0.0.1', master_port=${primary.port}, master_user='repl', master_password='repl-pw', master_use_gtid=slave_pos; START SLAVE`,
  );
  // The grants README documents for physical backups from a replica, and nothing more.
  await replica.sql(
    "SET sql_log_bin=0; CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY 'backup-pw'; " +
      "GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR, REPLICATION SLAVE ADMIN ON *.* TO 'backup'@'127.0.0.1'",
  );
  await primary.sql(
    'CREATE DATABASE shop; CREATE DATABASE IF NOT EXISTS test; CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(64)) ENGINE=InnoDB; ' +
      "INSERT INTO shop.orders (note) SELECT CONCAT('order ', seq) FROM test.seq_1_to_500",
  );
}, 60_000);

afterAll(async () => {
  await replica?.stop();
  await primary?.stop();
  await rm(join(dir, 'restored'), { recursive: true, force: true });
});

describe('physical backups from a replica', () => {
  it('record the primary coordinates, resume replication, and restore the replicated data', async () => {
    const applied = await caughtUp();
    const config = await writeConfig(
      dir,
      [
        'storage:',
        await storageYaml('local'),
        'databases:',
        '  - name: replica',
        '    host: 127.0.0.1',
        `    port: ${replica.port}`,
        '    user: backup',
        '    password: ${REPLICA_PW}',
        '    physical: { replica: true }',
        '',
      ].join('\n'),
    );
    const env = { REPLICA_PW: 'backup-pw' };
    const result = await agent(['--config', config, 'run-now', '--type', 'full', '--json'], env);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const [manifest] = JSON.parse(result.stdout) as { server: { serverId: number }; physical: { primary: unknown } }[];
    expect(manifest?.server.serverId).toBe(12);
    expect(manifest?.physical.primary).toEqual({
      gtid: applied,
      file: null,
      position: null,
      reported: expect.stringContaining(`gtid_slave_pos '${applied}'`) as unknown,
    });

    // --safe-slave-backup paused the SQL thread; it must run again, and replication go on.
    const status = await replica.sql("SHOW STATUS LIKE 'Slave_running'");
    expect(status).toBe('Slave_running\tON');
    await primary.sql("INSERT INTO shop.orders (note) VALUES ('after the backup')");
    await caughtUp();

    const datadir = join(dir, 'restored');
    const restored = await agent(['--config', config, 'restore', '--database', 'replica', '--datadir', datadir], env);
    expect(restored.exitCode).toBe(0);
    const server = await startSandbox({ dir: join(dir, 'restored-server'), port: await freePort(), existingDatadir: datadir, serverId: 13 });
    try {
      expect(await server.sql('SELECT COUNT(*), MAX(note) FROM shop.orders')).toBe('500\torder 99');
      // The archive's own record, for starting a new replica from this datadir.
      expect(await readFile(join(datadir, 'xtrabackup_slave_info'), 'utf8')).toContain(`SET GLOBAL gtid_slave_pos = '${applied}'`);
    } finally {
      await server.stop();
    }
  });

  it('a primary backed up with physical.replica warns that it reported no replica position', async () => {
    const config = await writeConfig(
      await testDir('replica-on-primary'),
      ['storage:', await storageYaml('local'), 'databases:', '  - name: primary', `    socket: ${primary.socket}`, '    user: root', '    physical: { replica: true }', ''].join('\n'),
    );
    const result = await agent(['--config', config, 'run-now', '--type', 'full', '--json'], {});
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('physical.replica is set but mariadb-backup reported no replica position');
    const [manifest] = JSON.parse(result.stdout) as { physical: { primary: unknown } }[];
    expect(manifest?.physical.primary).toBeNull();
  });
});
