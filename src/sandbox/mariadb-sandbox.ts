import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { trackTool, untrackTool } from '../capture/running-tools.ts';
import { diesWithAgent, toolEnvironment } from '../capture/tool-process.ts';

/**
 * A throwaway MariaDB server: its own datadir, port, socket and binlog, started from the installed
 * `mariadb-install-db` and `mariadbd`. Used by `agent demo` and by the test harness. It never
 * touches /var/lib/mysql or port 3306.
 */

export interface SandboxOptions {
  /** Directory that holds datadir, socket, config and logs; created if missing. */
  dir: string;
  port: number;
  serverId?: number;
  /** Start on an existing datadir instead of initialising a new one. */
  existingDatadir?: string;
  /** Password for the TCP user `agent`@`127.0.0.1` created on a fresh server (all privileges). */
  agentPassword?: string;
  /**
   * A private server on someone's restored datadir: no TCP (socket only, in `dir`), no binary log
   * written into that datadir, and no grant checks, so the agent gets in whatever the restored
   * accounts require. `port` is ignored.
   */
  private?: boolean;
  /**
   * A private server that keeps grant checks: for a fresh datadir the agent fills itself (root over
   * the socket, no password). Without grant tables MariaDB disables the event scheduler, and a
   * dump's CREATE EVENT fails.
   */
  grantTables?: boolean;
  /** More `[mysqld]` options, one per line (e.g. TLS for a test). */
  serverOptions?: readonly string[];
}

export interface Sandbox {
  host: '127.0.0.1';
  port: number;
  socket: string;
  datadir: string;
  pid: number;
  /** Runs SQL as root over the socket; returns tab-separated rows. */
  sql(statement: string): Promise<string>;
  stop(): Promise<void>;
}

function myCnf(dir: string, datadir: string, port: number, serverId: number, isPrivate: boolean, grantTables: boolean, serverOptions: readonly string[] = []): string {
  return [
    '[mysqld]',
    'user=root',
    `datadir=${datadir}`,
    `socket=${join(dir, 'mysqld.sock')}`,
    // A private server takes a replay: mariadb-binlog sends a row-event group as one statement.
    ...(isPrivate ? ['skip-networking', ...(grantTables ? [] : ['skip-grant-tables']), 'skip-log-bin', 'max_allowed_packet=1G'] : [`port=${port}`, 'bind-address=127.0.0.1', `log-bin=${join(datadir, 'mysql-bin')}`]),
    `pid-file=${join(dir, 'mysqld.pid')}`,
    `log-error=${join(dir, 'error.log')}`,
    `tmpdir=${dir}`,
    `server-id=${serverId}`,
    'binlog_format=ROW',
    'gtid_strict_mode=1',
    'log_slave_updates=1',
    'innodb_buffer_pool_size=128M',
    'innodb_log_file_size=64M',
    ...serverOptions,
    'skip-name-resolve',
    'max_connections=100',
    '[client]',
    `socket=${join(dir, 'mysqld.sock')}`,
    'user=root',
    '',
  ].join('\n');
}

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const dir = options.dir;
  const datadir = options.existingDatadir ?? join(dir, 'data');
  const cnf = join(dir, 'my.cnf');
  await mkdir(dir, { recursive: true });
  await writeFile(cnf, myCnf(dir, datadir, options.port, options.serverId ?? 1, options.private ?? false, options.grantTables ?? false, options.serverOptions));
  const defaults = `--defaults-file=${cnf}`;
  // The agent's environment holds secrets a throwaway server has no use for.
  const env = toolEnvironment(process.env);

  if (!options.existingDatadir) {
    await rm(datadir, { recursive: true, force: true });
    await execa('mariadb-install-db', [defaults, '--skip-test-db', '--auth-root-authentication-method=normal'], {
      stdin: 'ignore',
      env,
      extendEnv: false,
    });
  }

  // A throwaway server never outlives the process that started it (a restore --verify or a
  // datadir PITR killed with SIGKILL would leave a server without grant checks on the restored
  // datadir): it gets the kernel's parent-death signal, and a forced exit kills it with the tools.
  const [command, argv] = diesWithAgent('mariadbd', [defaults]);
  const child = spawn(command, argv, { stdio: 'ignore', detached: true, env });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('start mariadbd: no pid');
  trackTool(pid);
  void exited.then(() => untrackTool(pid));

  const sql = async (statement: string): Promise<string> => {
    // On stdin, not `-e`: statements may carry a password (CREATE USER below), and argv is public.
    const { stdout } = await execa('mariadb', [defaults, '--batch', '--skip-column-names'], {
      input: statement,
      env,
      extendEnv: false,
    });
    return stdout;
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = await Promise.race([exited.then(() => 'exited' as const), sleep(50).then(() => 'waiting' as const)]);
    if (state === 'exited') {
      throw new Error(`mariadbd exited during start-up; see ${join(dir, 'error.log')}`);
    }
    if (options.private || (await portAnswers(options.port))) {
      try {
        await sql('SELECT 1');
        break;
      } catch {
        // not accepting queries yet
      }
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`mariadbd did not start within 30 s; see ${join(dir, 'error.log')}`);
    }
  }

  if (!options.existingDatadir && options.agentPassword !== undefined) {
    const pw = options.agentPassword.replace(/'/g, "''");
    await sql(
      `SET sql_log_bin=0; CREATE USER 'agent'@'127.0.0.1' IDENTIFIED BY '${pw}'; ` +
        `GRANT ALL PRIVILEGES ON *.* TO 'agent'@'127.0.0.1' WITH GRANT OPTION; SET sql_log_bin=1;`,
    );
  }

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // The child is unref'd so a running server never keeps its parent alive; while waiting for it
    // to exit it must be ref'd again, or an otherwise idle process would exit mid-await.
    child.ref();
    process.kill(pid, 'SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(15_000, undefined, { ref: false }).then(() => false)]);
    if (!done) {
      process.kill(pid, 'SIGKILL');
      await exited;
    }
  };

  return { host: '127.0.0.1', port: options.port, socket: join(dir, 'mysqld.sock'), datadir, pid, sql, stop };
}
