// Pure decisions of a restore: the one-line client error, what counts as data on the target, the
// target's fitness for a replay, the verdict of --verify, and where a replay's reading stops.
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { ToolError } from '../../src/capture/tool-process.ts';
import { clientErrorLine, describeToolFailure } from '../../src/restore/client-error.ts';
import { GtidStrip } from '../../src/restore/gtid-strip.ts';
import { describeOccupied } from '../../src/restore/occupied.ts';
import { processesIn } from '../../src/restore/physical-restore.ts';
import { targetBlockers, type TargetFacts } from '../../src/restore/preflight.ts';
import { segmentReachesTarget, StatementSizer } from '../../src/restore/replay-verify.ts';
import { judge, quoteIdentifier } from '../../src/restore/verify-datadir.ts';

describe('client errors in one line, without data', () => {
  it('keeps code, SQLSTATE, line and message; drops the statement after "near"', () => {
    const stderr = "ERROR 1064 (42000) at line 7: You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '(1,'alice@example.com'),(2,' at line 1\n";
    expect(clientErrorLine(stderr)).toBe('ERROR 1064 (42000) at line 7: You have an error in your SQL syntax');
  });

  it('elides quoted values, keeps quoted names', () => {
    expect(clientErrorLine("ERROR 1062 (23000) at line 9: Duplicate entry 'alice@example.com' for key 'email'")).toBe(
      "ERROR 1062 (23000) at line 9: Duplicate entry '…' for key 'email'",
    );
    expect(clientErrorLine("ERROR 1146 (42S02) at line 3: Table 'shop.t' doesn't exist")).toBe("ERROR 1146 (42S02) at line 3: Table 'shop.t' doesn't exist");
  });

  it('a tool failure whose stderr is rows and hex becomes one line naming the cause', () => {
    const rows = '(8403,8404,11512.11,0xC7E17652D2550C698B1FF58A5B5AE3833E3004ECD546FB2D22E038FC2CD295DA),\n'.repeat(500);
    const err = new ToolError('mariadb', 1, undefined, `${rows}ERROR 2013 (HY000) at line 40132: Lost connection to server during query\n`);
    expect(describeToolFailure(err)).toBe('mariadb exited with code 1: ERROR 2013 (HY000) at line 40132: Lost connection to server during query');
    expect(describeToolFailure(new ToolError('mariadb', 1, undefined, rows))).toBe('mariadb exited with code 1');
  });
});

describe('what a target schema holds', () => {
  it('counts routines, triggers, events and views, not only tables', () => {
    expect(
      describeOccupied([
        { schema: 'a', tables: 0, views: 0, routines: 1, triggers: 0, events: 0 },
        { schema: 'b', tables: 0, views: 0, routines: 0, triggers: 0, events: 0 },
        { schema: 'c', tables: 2, views: 1, routines: 0, triggers: 1, events: 3 },
      ]),
    ).toEqual(['a (1 routine)', 'c (2 tables, 1 view, 1 trigger, 3 events)']);
  });
});

describe('the target of a replay', () => {
  const facts: TargetFacts = { user: "'agent'@'%'", logBin: true, binlogFormat: 'ROW', maxAllowedPacket: 16 * 1024 ** 2, canSkipBinlog: true, canReplay: true };

  it('a fit target has no blockers', () => {
    expect(targetBlockers(facts, { skipBinlog: false, replay: true, largestStatement: 1000 })).toEqual([]);
  });

  it('names each missing privilege and setting with its fix', () => {
    const blockers = targetBlockers(
      { ...facts, canSkipBinlog: false, canReplay: false, binlogFormat: 'STATEMENT', maxAllowedPacket: 1024 },
      { skipBinlog: true, replay: true, largestStatement: 5 * 1024 ** 2 },
    );
    expect(blockers.map((b) => b.problem)).toEqual([
      "--no-binlog needs the BINLOG ADMIN (or SUPER) privilege, which 'agent'@'%' lacks",
      "replaying binlog needs the BINLOG REPLAY (or SUPER) privilege, which 'agent'@'%' lacks",
      'the replay sends a 5242880-byte statement and the target\'s max_allowed_packet is 1024',
    ]);
    expect(targetBlockers({ ...facts, binlogFormat: 'STATEMENT' }, { skipBinlog: false, replay: true })[0]?.fix).toBe(
      'SET GLOBAL binlog_format=MIXED (or ROW) on the target, or restore with --no-binlog',
    );
    expect(targetBlockers({ ...facts, canReplay: false }, { skipBinlog: false, replay: false })).toEqual([]);
  });
});

describe('--verify verdict', () => {
  const table = (t: string, checksum: string | null, problems: string[] = []) => ({ schema: 'shop', table: t, checksum, problems });

  it('quotes any identifier', () => {
    expect(quoteIdentifier('a`b c')).toBe('`a``b c`');
  });

  it('fails on a NULL checksum, a CHECK TABLE problem, an absent schema and a recorded figure that differs', () => {
    const result = judge({
      expectedSchemas: ['shop', 'gone'],
      presentSchemas: ['shop', 'mysql'],
      tables: [table('ok', '1'), table('broken', null), table('bad', '2', ['error: Corrupt']), table('changed', '3'), { ...table('short', '6'), rows: 999 }],
      recorded: new Map([
        ['shop.ok', { rows: 0, checksum: '1' }],
        ['shop.changed', { rows: 0, checksum: '4' }],
        ['shop.short', { rows: 1000, checksum: '6' }],
        ['shop.missing', { rows: 1, checksum: '5' }],
      ]),
    });
    expect(result.lines).toEqual(['shop.ok\t1', 'shop.broken\tNULL', 'shop.bad\t2', 'shop.changed\t3', 'shop.short\t6']);
    expect(result.failures).toEqual([
      'schema gone of the backup is absent',
      'CHECKSUM TABLE shop.broken: NULL (the server cannot read the table)',
      'CHECK TABLE shop.bad: error: Corrupt',
      'shop.changed: checksum 3 differs from 4 recorded at backup time',
      'shop.short: 999 rows, 1000 at backup time',
      'table shop.missing recorded at backup time is absent',
    ]);
  });

  it('passes when everything checks', () => {
    expect(judge({ expectedSchemas: [], presentSchemas: [], tables: [table('ok', '1')] }).failures).toEqual([]);
  });
});

describe('replay verification', () => {
  it('stops reading at the segment that holds the target', () => {
    const target = { kind: 'time' as const, at: new Date('2026-11-30T10:00:00.500Z'), text: '' };
    expect(segmentReachesTarget({ lastEventAt: '2026-11-30T10:00:00.000Z', gtidLast: null }, target)).toBe(false);
    expect(segmentReachesTarget({ lastEventAt: '2026-11-30T10:00:01.000Z', gtidLast: null }, target)).toBe(true);
    const gtid = { kind: 'gtid' as const, gtid: { domain: 1, serverId: 1, sequence: 10n }, text: '' };
    expect(segmentReachesTarget({ lastEventAt: '2026-11-30T10:00:00.000Z', gtidLast: '0-1-50,1-1-9' }, gtid)).toBe(false);
    expect(segmentReachesTarget({ lastEventAt: '2026-11-30T10:00:00.000Z', gtidLast: '0-1-50,1-1-10' }, gtid)).toBe(true);
  });

  it('measures a row-event group as the base64 statement the client sends', () => {
    const sizer = new StatementSizer();
    const rowsEvent = (end: boolean) => {
      const b = Buffer.alloc(3000);
      b.writeUInt8(23, 4);
      b.writeUInt16LE(end ? 1 : 0, 25);
      return b;
    };
    sizer.event(19, Buffer.alloc(300));
    sizer.event(23, rowsEvent(false));
    sizer.event(23, rowsEvent(true));
    expect(sizer.largest).toBe(8400 + Math.ceil(8400 / 76) + 64);
  });
});

describe('GtidStrip', () => {
  it("drops only the GTID sequence and server id lines of mariadb-binlog's GTID preamble", async () => {
    const input = [
      '#261130 20:19:40 server id 5  end_log_pos 1628 CRC32 0xc5d37a3d \tGTID 0-5-8 trans',
      '/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;',
      '/*M!100001 SET @@session.server_id=5*//*!*/;',
      '/*M!100001 SET @@session.gtid_seq_no=8*//*!*/;',
      'START TRANSACTION',
      "INSERT INTO t VALUES ('",
      '/*M!100001 SET @@session.gtid_seq_no=9*//*!*/;',
      "')",
      '',
    ].join('\n');
    const chunks = [...input].map((c) => Buffer.from(c, 'latin1'));
    const out = (await buffer(Readable.from(chunks).pipe(new GtidStrip()))).toString('latin1');
    expect(out.split('\n')).toEqual([
      '#261130 20:19:40 server id 5  end_log_pos 1628 CRC32 0xc5d37a3d \tGTID 0-5-8 trans',
      '/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;',
      'START TRANSACTION',
      "INSERT INTO t VALUES ('",
      '/*M!100001 SET @@session.gtid_seq_no=9*//*!*/;',
      "')",
      '',
    ]);
  });
});

describe('processesIn: is a server using the datadir? (a /proc double: hidepid cannot be mounted in a test)', () => {
  async function fakeProc(root: string, cwds: Record<string, string>): Promise<string> {
    const proc = join(root, 'proc');
    for (const [pid, cwd] of Object.entries(cwds)) {
      await mkdir(join(proc, pid), { recursive: true });
      await symlink(cwd, join(proc, pid, 'cwd'));
    }
    return proc;
  }

  it('finds a process in the datadir through a symlinked parent, by device and inode', async () => {
    const root = await mkdtemp(join(tmpdir(), 'processes-in-'));
    await mkdir(join(root, 'real', 'datadir'), { recursive: true });
    await symlink(join(root, 'real'), join(root, 'link'));
    const proc = await fakeProc(root, { '1': '/', '4242': join(root, 'real', 'datadir') });
    expect(await processesIn(join(root, 'link', 'datadir'), proc)).toEqual([4242]);
  });

  it('fails closed when /proc hides processes (no pid 1: hidepid=) or a working directory cannot be read', async () => {
    const root = await mkdtemp(join(tmpdir(), 'processes-in-'));
    await mkdir(join(root, 'datadir'));
    const hidden = await fakeProc(join(root, 'a'), { '4242': '/' });
    await expect(processesIn(join(root, 'datadir'), hidden)).rejects.toThrow(`restore into ${join(root, 'datadir')}: cannot tell whether a server uses it: ${hidden} does not show every process (mounted with hidepid=?)`);
    const unreadable = await fakeProc(join(root, 'b'), { '1': '/', '77': join(root, 'b', 'proc', '77', 'cwd') });
    await expect(processesIn(join(root, 'datadir'), unreadable)).rejects.toThrow(/cannot tell whether a server uses it: the working directory of pid 77: ELOOP cannot be read/);
  });
});
