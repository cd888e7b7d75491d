// The dump command line, the coordinates a dump records about itself, the credentials file and
// tool version parsing. Pure functions, plus one check of the defaults-file quoting against the
// real `mariadb` client and the harness's MariaDB.
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { renderDefaultsFile, withDefaultsFile, type ClientFlavor } from '../../src/capture/defaults-file.ts';
import { buildDumpArgs, type DumpArgsInput } from '../../src/capture/dump.ts';
import { CoordinatesScanner, parseDumpCoordinates } from '../../src/capture/dump-coordinates.ts';
import { parseToolVersion } from '../../src/capture/tools.ts';
import type { Connection } from '../../src/config/normalize.ts';
import { Secret } from '../../src/config/secret.ts';
import { sourceSql } from '../helpers.ts';

const MARIADB_1011 = { flavor: 'mariadb', version: '10.11.19-MariaDB' } as const;
const MYSQL_8036 = { flavor: 'mysql', version: '8.0.36' } as const;

function args(overrides: Partial<DumpArgsInput> = {}): string[] {
  return buildDumpArgs({
    defaultsFile: '/tmp/backup-agent-x/client.cnf',
    tool: MARIADB_1011,
    schemas: ['shop', 'crm'],
    binlogCoordinates: true,
    extraArgs: [],
    ...overrides,
  });
}

describe('buildDumpArgs', () => {
  it('puts --defaults-file first', () => {
    for (const tool of [MARIADB_1011, MYSQL_8036]) {
      expect(args({ tool })[0]).toBe('--defaults-file=/tmp/backup-agent-x/client.cnf');
    }
  });

  it('asks for one consistent, streamed snapshot with routines, events and triggers', () => {
    for (const tool of [MARIADB_1011, MYSQL_8036, { flavor: 'mysql', version: '5.7.44' } as const]) {
      expect(args({ tool })).toEqual(
        expect.arrayContaining(['--single-transaction', '--quick', '--routines', '--events', '--triggers', '--hex-blob', '--no-tablespaces']),
      );
      // No global read lock: --lock-all-tables / --lock-tables would stall writers.
      expect(args({ tool }).some((a) => /^--(lock-all-tables|lock-tables|opt-lock|x)$/.test(a))).toBe(false);
    }
  });

  it('never carries a password', () => {
    for (const tool of [MARIADB_1011, MYSQL_8036]) {
      const argv = args({ tool, extraArgs: ['--skip-comments'] });
      expect(argv.some((a) => /^(--password|-p)/.test(a))).toBe(false);
      expect(argv.some((a) => /^(--user|-u|--host|-h)/.test(a))).toBe(false); // all in the defaults file
    }
  });

  it('adds --column-statistics=0 only for mysqldump 8 and later', () => {
    const has = (tool: DumpArgsInput['tool']): boolean => args({ tool }).includes('--column-statistics=0');
    expect(has(MYSQL_8036)).toBe(true);
    expect(has({ flavor: 'mysql', version: '8.4.0' })).toBe(true);
    expect(has({ flavor: 'mysql', version: '9.1.0' })).toBe(true);
    expect(has({ flavor: 'mysql', version: '5.7.44' })).toBe(false);
    expect(has(MARIADB_1011)).toBe(false);
    expect(has({ flavor: 'mariadb', version: '11.4.2-MariaDB' })).toBe(false);
  });

  it('uses --source-data=2 from mysqldump 8.0.26 on, --master-data=2 before', () => {
    const coordinateFlags = (version: string): string[] =>
      args({ tool: { flavor: 'mysql', version } }).filter((a) => /^--(source|master)-data|^--gtid$/.test(a));
    expect(coordinateFlags('8.0.36')).toEqual(['--source-data=2']);
    expect(coordinateFlags('8.0.26')).toEqual(['--source-data=2']);
    expect(coordinateFlags('8.4.3')).toEqual(['--source-data=2']);
    expect(coordinateFlags('9.0.1')).toEqual(['--source-data=2']);
    expect(coordinateFlags('8.0.25')).toEqual(['--master-data=2']);
    expect(coordinateFlags('5.7.44')).toEqual(['--master-data=2']);
  });

  it('uses --master-data=2 --gtid for mariadb-dump when coordinates are on', () => {
    const argv = args({ tool: MARIADB_1011, binlogCoordinates: true });
    expect(argv.filter((a) => /^--(source|master)-data|^--gtid$/.test(a))).toEqual(['--master-data=2', '--gtid']);
  });

  it('asks for no coordinates when they are off', () => {
    for (const tool of [MARIADB_1011, MYSQL_8036]) {
      const argv = args({ tool, binlogCoordinates: false });
      expect(argv.filter((a) => /data=|^--gtid$/.test(a))).toEqual([]);
    }
  });

  it('ends with --databases, -- and the schemas, after any extra arguments', () => {
    const argv = args({ schemas: ['shop', 'crm', 'a-b', '-dash'], extraArgs: ['--skip-events', '--compact'] });
    // After `--` a schema named like an option (`-dash`) is a name, not an option.
    expect(argv.slice(-6)).toEqual(['--databases', '--', 'shop', 'crm', 'a-b', '-dash']);
    expect(argv.slice(-8, -6)).toEqual(['--skip-events', '--compact']);
    expect(argv.filter((a) => a === '--databases')).toHaveLength(1);
  });

  it('is deterministic', () => {
    expect(args({ tool: MYSQL_8036 })).toEqual(args({ tool: MYSQL_8036 }));
  });
});

// A real mariadb-dump 10.11 --master-data=2 --gtid dump (table data shortened).
const MARIADB_HEAD = `/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: probe
-- ------------------------------------------------------
-- Server version\t10.11.19-MariaDB-0+deb12u1-log

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;

-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed later in the file.

--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
-- Use this when creating a slave of the master server where the backup was made.
-- The new server will be connecting to the master server where the backup was taken.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=861;

--
-- Current Database: \`probe\`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`probe\` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */;

USE \`probe\`;
`;

const MARIADB_TAIL = `UNLOCK TABLES;

-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows

-- Preferably use GTID to start replication from GTID position:

-- SET GLOBAL gtid_slave_pos='0-1-3';
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-11-21 20:50:52
`;

const MYSQL_HEAD = `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: 127.0.0.1    Database: shop
-- ------------------------------------------------------
-- Server version\t8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!50503 SET NAMES utf8mb4 */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN= 0;

--
-- GTID state at the beginning of the backup 
--

SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;

--
-- Current Database: \`shop\`
--
`;

const MYSQL_TAIL = `SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

-- Dump completed on 2026-01-01  2:03:04
`;

const PLAIN_HEAD = MARIADB_HEAD.split('\n')
  .filter((l) => !l.includes('CHANGE MASTER'))
  .join('\n');

/** Table data between head and tail: `bytes` of INSERT lines. */
function rows(bytes: number): string {
  const line = "INSERT INTO `t` VALUES (1,'lorem ipsum dolor sit amet, consectetur adipiscing elit');\n";
  return line.repeat(Math.ceil(bytes / line.length));
}

describe('parseDumpCoordinates', () => {
  it('reads a MariaDB 10.11 dump: position at the top, GTID at the end', () => {
    expect(parseDumpCoordinates(MARIADB_HEAD, MARIADB_TAIL)).toEqual({ file: 'mysql-bin.000001', position: 861, gtid: '0-1-3' });
  });

  it("takes the tool's own GTID line at the end, not one inside table data before it", () => {
    const tail = `INSERT INTO notes VALUES (1,'gtid_slave_pos=\\'9-9-9\\' is a string');\n${MARIADB_TAIL}`.replace("INSERT INTO notes VALUES (1,'gtid_slave_pos=\\'9-9-9\\'", "INSERT INTO notes VALUES (1,'-- SET GLOBAL gtid_slave_pos='9-9-9'");
    expect(parseDumpCoordinates(MARIADB_HEAD, tail)).toMatchObject({ gtid: '0-1-3' });
  });

  it('reads a MySQL 8 dump: GTID_PURGED and position at the top', () => {
    expect(parseDumpCoordinates(MYSQL_HEAD, MYSQL_TAIL)).toEqual({
      file: 'binlog.000002',
      position: 157,
      gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5',
    });
  });

  it('reads a MySQL 5.7 style head (CHANGE MASTER, GTID_PURGED without the 8.0 comment)', () => {
    const head = MYSQL_HEAD.replace("/*!80000 '+'*/ ", '').replace(
      "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;",
      "-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=4;",
    );
    expect(parseDumpCoordinates(head, MYSQL_TAIL)).toEqual({ file: 'mysql-bin.000042', position: 4, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5' });
  });

  it('gives the position with a null GTID when there is none (or it is empty)', () => {
    expect(parseDumpCoordinates(MARIADB_HEAD, 'UNLOCK TABLES;\n-- Dump completed\n')).toEqual({ file: 'mysql-bin.000001', position: 861, gtid: null });
    expect(parseDumpCoordinates(MARIADB_HEAD, MARIADB_TAIL.replace("'0-1-3'", "''"))).toMatchObject({ gtid: null });
  });

  it('is null without a position', () => {
    expect(parseDumpCoordinates(PLAIN_HEAD, MARIADB_TAIL)).toBeNull();
    expect(parseDumpCoordinates('', '')).toBeNull();
    expect(parseDumpCoordinates('-- MySQL dump 10.13\n', MYSQL_TAIL)).toBeNull();
  });
});

/** Feeds `text` to a scanner in chunks of the sizes `nextSize` gives; returns coordinates and output. */
async function scan(text: string, nextSize: () => number): Promise<{ coordinates: ReturnType<CoordinatesScanner['coordinates']>; out: Buffer }> {
  const data = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const size = Math.max(1, nextSize());
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  const scanner = new CoordinatesScanner();
  const collected: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => collected.push(c));
  await pipeline(Readable.from(chunks, { objectMode: false }), scanner, sink);
  return { coordinates: scanner.coordinates(), out: Buffer.concat(collected) };
}

describe('CoordinatesScanner', () => {
  const dumps = {
    mariadb: { text: MARIADB_HEAD + rows(4096) + MARIADB_TAIL, expected: { file: 'mysql-bin.000001', position: 861, gtid: '0-1-3' } },
    mysql: { text: MYSQL_HEAD + rows(4096) + MYSQL_TAIL, expected: { file: 'binlog.000002', position: 157, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5' } },
    none: { text: PLAIN_HEAD + rows(4096) + MARIADB_TAIL, expected: null },
  };

  for (const [name, dump] of Object.entries(dumps)) {
    it(`${name}: 1-byte chunks, random chunks and one chunk give the same result, data unchanged`, async () => {
      const oneByte = await scan(dump.text, () => 1);
      const random = await scan(dump.text, () => 1 + randomBytes(2).readUInt16LE() % 700);
      const whole = await scan(dump.text, () => dump.text.length);
      for (const result of [oneByte, random, whole]) {
        expect(result.coordinates).toEqual(dump.expected);
        expect(result.out.equals(Buffer.from(dump.text))).toBe(true);
      }
    });
  }

  it('calls onPosition once, as soon as the head names the position (the dump snapshot exists by then), never without one', async () => {
    const calls: number[] = [];
    const scanner = new CoordinatesScanner({ onPosition: () => calls.push(seen) });
    let seen = 0;
    const counter = new PassThrough();
    counter.on('data', (c: Buffer) => (seen += c.length));
    const text = MARIADB_HEAD + rows(1024 * 1024) + MARIADB_TAIL;
    const data = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; at += 100) chunks.push(data.subarray(at, at + 100));
    await pipeline(Readable.from(chunks, { objectMode: false }), counter, scanner, new PassThrough().resume());
    expect(calls).toHaveLength(1);
    // Early in the stream: what passed the counter by then is the head plus what stream buffers hold.
    expect(calls[0]).toBeLessThan(Buffer.byteLength(MARIADB_HEAD) + 128 * 1024);
    let none = 0;
    await pipeline(Readable.from([Buffer.from(PLAIN_HEAD + rows(4096))]), new CoordinatesScanner({ onPosition: () => none++ }), new PassThrough().resume());
    expect(none).toBe(0);
  });

  it('finds a MariaDB GTID at the end of a dump far larger than its head and tail windows', async () => {
    const text = MARIADB_HEAD + rows(3 * 1024 * 1024) + MARIADB_TAIL;
    const result = await scan(text, () => 1 + randomBytes(4).readUInt32LE() % (96 * 1024));
    expect(result.coordinates).toEqual({ file: 'mysql-bin.000001', position: 861, gtid: '0-1-3' });
    expect(result.out.length).toBe(Buffer.byteLength(text));
  });
});

const connection = (overrides: Partial<Connection> = {}): Connection => ({
  host: '127.0.0.1',
  port: 3306,
  socket: undefined,
  user: 'backup',
  password: new Secret('pw'),
  tls: undefined,
  ...overrides,
});

/** The [client] options of a rendered file, as key → value (value undefined for a bare flag). */
function options(text: string): [string, string | undefined][] {
  return text
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => {
      const eq = line.indexOf('=');
      return eq < 0 ? [line, undefined] : [line.slice(0, eq), line.slice(eq + 1)];
    });
}

describe('renderDefaultsFile', () => {
  it('writes a [client] group with the connection over TCP', () => {
    const text = renderDefaultsFile(connection({ port: 3307 }), 'mariadb');
    expect(text).toBe('[client]\nuser="backup"\npassword="pw"\nhost="127.0.0.1"\nport=3307\nprotocol=TCP\n');
  });

  it('uses the socket instead of host and port', () => {
    const text = renderDefaultsFile(connection({ host: undefined, socket: '/run/mysqld/mysqld.sock' }), 'mysql');
    expect(options(text)).toEqual([
      ['user', '"backup"'],
      ['password', '"pw"'],
      ['socket', '"/run/mysqld/mysqld.sock"'],
      ['protocol', 'SOCKET'],
    ]);
  });

  it('leaves the password out when there is none', () => {
    expect(renderDefaultsFile(connection({ password: undefined }), 'mariadb')).not.toMatch(/password/);
  });

  it('quotes values with ", \\, #, spaces and quotes so option-file parsing gives them back', () => {
    const text = renderDefaultsFile(connection({ user: 'we ird', password: new Secret('a"b\\c #d  e\'f') }), 'mariadb');
    expect(text).toContain('\nuser="we ird"\n');
    expect(text).toContain('\npassword="a\\"b\\\\c #d  e\'f"\n');
  });

  it('refuses values with line breaks (they would inject options)', () => {
    expect(() => renderDefaultsFile(connection({ password: new Secret('pw\nhost=evil') }), 'mariadb')).toThrow(/line breaks/);
  });

  const tlsCases: [NonNullable<Connection['tls']>['mode'], ClientFlavor, string[]][] = [
    ['disabled', 'mariadb', ['skip-ssl']],
    ['disabled', 'mysql', ['ssl-mode=DISABLED']],
    ['required', 'mariadb', ['ssl', 'disable-ssl-verify-server-cert']],
    ['required', 'mysql', ['ssl-mode=REQUIRED']],
    ['verify_ca', 'mariadb', ['ssl', 'ssl-verify-server-cert']],
    ['verify_ca', 'mysql', ['ssl-mode=VERIFY_CA']],
    ['verify_identity', 'mariadb', ['ssl', 'ssl-verify-server-cert']],
    ['verify_identity', 'mysql', ['ssl-mode=VERIFY_IDENTITY']],
  ];
  it.each(tlsCases)('tls %s for %s', (mode, flavor, expected) => {
    const lines = renderDefaultsFile(connection({ tls: { mode } }), flavor).trimEnd().split('\n');
    const tlsLines = lines.slice(lines.indexOf('protocol=TCP') + 1);
    expect(tlsLines).toEqual(expected);
  });

  it('names CA, certificate and key files when TLS is on, not when it is disabled', () => {
    const tls = { mode: 'verify_identity' as const, ca_file: '/etc/ca.pem', cert_file: '/etc/c.pem', key_file: '/etc/k.pem' };
    const on = renderDefaultsFile(connection({ tls }), 'mysql');
    expect(on).toContain('\nssl-ca="/etc/ca.pem"\nssl-cert="/etc/c.pem"\nssl-key="/etc/k.pem"\nssl-mode=VERIFY_IDENTITY\n');
    const off = renderDefaultsFile(connection({ tls: { ...tls, mode: 'disabled' } }), 'mysql');
    expect(off).not.toContain('ssl-ca');
  });

  it('gives mariadb-backup the same connection and TLS options, in its own group', () => {
    const tls = { mode: 'verify_identity' as const, ca_file: '/etc/ca.pem', cert_file: '/etc/c.pem', key_file: '/etc/k.pem' };
    const text = renderDefaultsFile(connection({ tls }), 'mariadb', 'mariadb-backup');
    expect(text).toBe(
      '[mariadb-backup]\nuser="backup"\npassword="pw"\nhost="127.0.0.1"\nport=3306\nprotocol=TCP\n' +
        'ssl-ca="/etc/ca.pem"\nssl-cert="/etc/c.pem"\nssl-key="/etc/k.pem"\nssl\nssl-verify-server-cert\n',
    );
    expect(renderDefaultsFile(connection({ tls: { mode: 'required' } }), 'mariadb', 'mariadb-backup')).toMatch(/\nssl\ndisable-ssl-verify-server-cert\n$/);
    expect(renderDefaultsFile(connection({ tls: { mode: 'disabled' } }), 'mariadb', 'mariadb-backup')).toMatch(/\nskip-ssl\n$/);
  });

  // The real mariadb-backup reads the file: an option it does not know stops it with "unknown
  // variable" before it connects; known ones get it as far as connecting (to a closed port here).
  it.each(['verify_identity', 'required', 'disabled'] as const)('the real mariadb-backup accepts the TLS options of mode %s', async (mode) => {
    const tls = { mode, ca_file: '/etc/ca.pem', cert_file: '/etc/c.pem', key_file: '/etc/k.pem' };
    const dir = await mkdtemp(join(tmpdir(), 'tls-options-'));
    await withDefaultsFile(connection({ port: 1, tls }), 'mariadb', async (path) => {
      const result = await execa('mariadb-backup', [`--defaults-file=${path}`, '--backup', '--stream=xbstream', `--target-dir=${dir}`], { reject: false });
      expect(result.stderr).not.toContain('unknown');
      expect(result.stderr).toContain("Failed to connect to MariaDB server: Can't connect to server on '127.0.0.1'");
    }, 'mariadb-backup').finally(() => rm(dir, { recursive: true, force: true }));
  });

  it('sets no TLS option without a tls block', () => {
    for (const flavor of ['mariadb', 'mysql'] as const) {
      expect(renderDefaultsFile(connection(), flavor)).not.toMatch(/ssl/);
    }
  });
});

describe('withDefaultsFile', () => {
  it('gives fn a 0600 file whose name is already gone (read through the agent\'s descriptor), with the rendered content', async () => {
    const conn = connection({ password: new Secret('s3cr3t') });
    let target = '';
    const result = await withDefaultsFile(conn, 'mariadb', async (path) => {
      expect(path).toMatch(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      target = await readlink(path);
      // The file and its private directory are removed before any tool runs: a SIGKILL of the
      // agent now leaves no credentials on disk.
      expect(target).toMatch(/\/backup-agent-[^/]+\/client\.cnf \(deleted\)$/);
      await expect(access(dirname(target))).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readFile(path, 'utf8')).toBe(renderDefaultsFile(conn, 'mariadb'));
      return 42;
    });
    expect(result).toBe(42);
    expect(target).not.toBe('');
  });

  it('closes the descriptor and rethrows when fn throws', async () => {
    const boom = new Error('tool failed');
    let target = '';
    await expect(
      withDefaultsFile(connection(), 'mysql', async (path) => {
        target = await readlink(path);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(target).toMatch(/client\.cnf \(deleted\)$/);
    const open = await readdir(`/proc/${process.pid}/fd`).then((fds) => Promise.all(fds.map((fd) => readlink(`/proc/${process.pid}/fd/${fd}`).catch(() => ''))));
    expect(open).not.toContain(target);
  });

  it('the real mariadb client logs in with a password full of special characters', async () => {
    const password = 'a"b\\c #d  e\'f;g=h$i';
    const sqlString = `'${password.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    const user = `quoting_${randomBytes(3).toString('hex')}`;
    await sourceSql(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY ${sqlString}`);
    try {
      const conn = connection({ user, password: new Secret(password), port: inject('mariadb').port });
      const who = await withDefaultsFile(conn, 'mariadb', async (path) => {
        const { stdout } = await execa('mariadb', [`--defaults-file=${path}`, '--batch', '--skip-column-names', '-e', 'SELECT CURRENT_USER()']);
        return stdout.trim();
      });
      expect(who).toBe(`${user}@127.0.0.1`);
    } finally {
      await sourceSql(`DROP USER '${user}'@'127.0.0.1'`);
    }
  });
});

describe('parseToolVersion', () => {
  it.each([
    ['mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)', { flavor: 'mariadb', version: '10.11.19-MariaDB' }],
    ['mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper', { flavor: 'mariadb', version: '10.11.19-MariaDB' }],
    ['mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)', { flavor: 'mysql', version: '8.0.36' }],
    ['mysqldump  Ver 8.4.3 for Linux on aarch64 (MySQL Community Server - GPL)', { flavor: 'mysql', version: '8.4.3' }],
    ['mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)', { flavor: 'mysql', version: '5.7.44' }],
    // Debian's mysqldump is MariaDB's under the old name.
    ['mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)', { flavor: 'mariadb', version: '10.11.19-MariaDB' }],
    // MariaDB 11.x words it differently.
    ['mariadb-dump from 11.8.6-MariaDB, client 10.19 for debian-linux-gnu (x86_64)', { flavor: 'mariadb', version: '11.8.6-MariaDB' }],
    ['mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)', { flavor: 'mariadb', version: '10.11.19-MariaDB' }],
  ])('%s', (line, expected) => {
    expect(parseToolVersion(line)).toEqual(expected);
  });

  it('the installed mariadb-dump', async () => {
    const { stdout } = await execa('mariadb-dump', ['--version']);
    expect(parseToolVersion(stdout.split('\n')[0] ?? '')).toMatchObject({ flavor: 'mariadb', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
});
