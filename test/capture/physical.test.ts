// mariadb-backup's command line, the metadata it writes, the full-or-incremental decision and the
// restore chain: pure functions.
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { buildPhysicalArgs, parseBinlogPos, parseCheckpoints, parseReplicaPosition, planPhysical } from '../../src/capture/physical.ts';
import { restoreChain } from '../../src/restore/chain.ts';

const CHECKPOINTS = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44404\nlast_lsn = 684145\nrecover_binlog_info = 0\n';
const INFO = "uuid = 2455\ntool_name = mariadb-backup\nbinlog_pos = filename 'mysql-bin.000001', position '244459', GTID of the last change '0-1-10'\ninnodb_from_lsn = 0\n";

function manifest(id: string, type: Manifest['type'], physical?: Partial<NonNullable<Manifest['physical']>>, server = { serverId: 1, hostname: 'db1' }): Manifest {
  return {
    id,
    type,
    server: { flavor: 'mariadb', version: '10.11', ...server },
    ...(physical ? { physical: { fromLsn: '0', toLsn: '100', lastLsn: '100', parent: null, chainLength: 1, datadir: '/var/lib/mysql', primary: null, ...physical } } : {}),
  } as Manifest;
}

describe('buildPhysicalArgs', () => {
  it('streams xbstream with the defaults file first; no secret on the command line', () => {
    expect(buildPhysicalArgs({ defaultsFile: '/tmp/x/client.cnf', lsnDir: '/tmp/lsn', datadir: '/var/lib/mysql', replica: false, extraArgs: [] })).toEqual([
      '--defaults-file=/tmp/x/client.cnf',
      '--backup',
      '--stream=xbstream',
      '--extra-lsndir=/tmp/lsn',
      '--target-dir=/tmp/lsn',
      '--datadir=/var/lib/mysql',
    ]);
  });

  it('adds --incremental-lsn, replica options and extra arguments', () => {
    const args = buildPhysicalArgs({ defaultsFile: 'f', lsnDir: 'l', datadir: 'd', incrementalLsn: '44404', replica: true, extraArgs: ['--parallel=4'] });
    expect(args.slice(6)).toEqual(['--incremental-lsn=44404', '--safe-slave-backup', '--slave-info', '--parallel=4']);
  });
});

describe('mariadb-backup metadata', () => {
  it('reads xtrabackup_checkpoints', () => {
    expect(parseCheckpoints(CHECKPOINTS)).toEqual({ backupType: 'full-backuped', fromLsn: '0', toLsn: '44404', lastLsn: '684145' });
    expect(() => parseCheckpoints('backup_type = full-backuped\n')).toThrow(/no valid from_lsn/);
  });

  it('reads the binlog position and GTID from xtrabackup_info', () => {
    expect(parseBinlogPos(INFO)).toEqual({ file: 'mysql-bin.000001', position: 244459, gtid: '0-1-10' });
    expect(parseBinlogPos("binlog_pos = filename 'b.000002', position '4'\n")).toEqual({ file: 'b.000002', position: 4, gtid: null });
    expect(parseBinlogPos('uuid = x\n')).toBeNull();
  });
});

describe('parseReplicaPosition (mariadb-backup --slave-info on stderr)', () => {
  it('reads GTID mode, file/position mode, and nothing when absent', () => {
    const gtidLine = "[00] 2026-11-21 22:14:41 MySQL slave binlog position: gtid_slave_pos '0-1-5'; master '' master_use_gtid = slave_pos";
    expect(parseReplicaPosition(`x\n${gtidLine}\n[00] completed OK!\n`)).toEqual({
      gtid: '0-1-5',
      file: null,
      position: null,
      reported: "gtid_slave_pos '0-1-5'; master '' master_use_gtid = slave_pos",
    });
    const fileLine = "[00] MySQL slave binlog position: master host '10.0.0.5', filename 'mysql-bin.000003', position '1234', channel name: ''";
    expect(parseReplicaPosition(fileLine)).toMatchObject({ gtid: null, file: 'mysql-bin.000003', position: 1234 });
    expect(parseReplicaPosition("[00] MySQL binlog position: filename 'mysql-bin.000001', position '1153'")).toBeNull();
  });
});

describe('planPhysical: full or incremental', () => {
  const full = manifest('f1', 'full', { toLsn: '500', chainLength: 1 });
  const inc = manifest('i1', 'incremental', { parent: 'f1', toLsn: '900', chainLength: 2 });

  it('builds on the newest physical backup of the same server', () => {
    expect(planPhysical('incremental', [inc, full], { serverId: 1, hostname: 'db1' }, 7)).toMatchObject({ type: 'incremental', parent: { id: 'i1' } });
  });

  it('takes a full backup when there is no base, another server, or a full chain', () => {
    expect(planPhysical('incremental', [manifest('d', 'dump')], { serverId: 1, hostname: 'db1' }, 7)).toEqual({ type: 'full', reason: 'no physical backup to build on' });
    expect(planPhysical('incremental', [inc, full], { serverId: 2, hostname: 'db2' }, 7)).toMatchObject({ type: 'full', reason: expect.stringMatching(/came from another server/) });
    expect(planPhysical('incremental', [inc, full], { serverId: 1, hostname: 'db1' }, 2)).toMatchObject({ type: 'full', reason: expect.stringMatching(/reached its maximum length \(2\)/) });
    expect(planPhysical('full', [inc, full], { serverId: 1, hostname: 'db1' }, 7)).toMatchObject({ type: 'full' });
  });
});

describe('restoreChain', () => {
  it('is the full backup, then each incremental in order', () => {
    const catalog = [manifest('i2', 'incremental', { parent: 'i1' }), manifest('i1', 'incremental', { parent: 'f1' }), manifest('f1', 'full', {})];
    expect(restoreChain(catalog[0] as Manifest, catalog).map((m) => m.id)).toEqual(['f1', 'i1', 'i2']);
    expect(restoreChain(catalog[2] as Manifest, catalog).map((m) => m.id)).toEqual(['f1']);
  });

  it('refuses a broken chain and a logical dump', () => {
    const orphan = manifest('i2', 'incremental', { parent: 'gone' });
    expect(() => restoreChain(orphan, [orphan])).toThrow(/backup i2 needs gone, which is not in the catalog: the chain of i2 is broken/);
    expect(() => restoreChain(manifest('d', 'dump'), [])).toThrow(/is a logical dump/);
  });
});
