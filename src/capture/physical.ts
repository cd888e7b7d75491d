import type { BinlogCoordinates, Manifest, PrimaryCoordinates } from '../catalog/manifest.ts';

/**
 * mariadb-backup: its command line, what it writes into --extra-lsndir, and the choice between a
 * full and an incremental backup. Pure.
 */

export interface PhysicalArgsInput {
  defaultsFile: string;
  /** Private temp directory for the small metadata files (xtrabackup_checkpoints, _info). */
  lsnDir: string;
  datadir: string;
  /** The previous backup's to_lsn, for an incremental. */
  incrementalLsn?: string | undefined;
  replica: boolean;
  extraArgs: readonly string[];
}

export function buildPhysicalArgs(input: PhysicalArgsInput): string[] {
  const args = [
    // Must be the first option.
    `--defaults-file=${input.defaultsFile}`,
    '--backup',
    '--stream=xbstream',
    `--extra-lsndir=${input.lsnDir}`,
    // Streaming writes no data here; mariadb-backup still wants a target for its own temp files.
    `--target-dir=${input.lsnDir}`,
    `--datadir=${input.datadir}`,
  ];
  if (input.incrementalLsn !== undefined) args.push(`--incremental-lsn=${input.incrementalLsn}`);
  if (input.replica) args.push('--safe-slave-backup', '--slave-info');
  args.push(...input.extraArgs);
  return args;
}

export interface Checkpoints {
  backupType: string;
  fromLsn: string;
  toLsn: string;
  lastLsn: string;
}

/** Parses xtrabackup_checkpoints (`key = value` lines). */
export function parseCheckpoints(text: string): Checkpoints {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1]) values.set(m[1], m[2] ?? '');
  }
  const need = (key: string) => {
    const v = values.get(key);
    if (v === undefined || !/^\d+$/.test(v)) throw new Error(`xtrabackup_checkpoints has no valid ${key}`);
    return v;
  };
  return { backupType: values.get('backup_type') ?? 'unknown', fromLsn: need('from_lsn'), toLsn: need('to_lsn'), lastLsn: need('last_lsn') };
}

/** The binlog position of the backup from xtrabackup_info's `binlog_pos` line, or null. */
export function parseBinlogPos(info: string): BinlogCoordinates | null {
  const m = /^binlog_pos\s*=\s*filename '([^']+)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/m.exec(info);
  if (!m?.[1] || !m[2]) return null;
  return { file: m[1], position: Number(m[2]), gtid: m[3] ? m[3] : null };
}

/**
 * The primary's coordinates from mariadb-backup's `MySQL slave binlog position: …` line (written
 * with --slave-info; the same data goes into the archive's xtrabackup_slave_info, which is not put
 * into --extra-lsndir). GTID mode: `gtid_slave_pos '0-1-5'; master '' master_use_gtid = slave_pos`;
 * file mode: `master host 'h', filename 'mysql-bin.000003', position '1234'[, channel name: '']`.
 * Null when the line is missing (not a replica, or the tool did not report it).
 */
export function parseReplicaPosition(stderr: string): PrimaryCoordinates | null {
  const line = /MySQL slave binlog position: (.*)$/m.exec(stderr)?.[1]?.trim();
  if (!line) return null;
  const gtid = /gtid_slave_pos '([^']*)'/.exec(line)?.[1] ?? /purge list '([^']*)'/.exec(line)?.[1];
  const file = /filename '([^']+)'/.exec(line)?.[1];
  const position = /position '(\d+)'/.exec(line)?.[1];
  return { gtid: gtid ? gtid : null, file: file ?? null, position: position === undefined ? null : Number(position), reported: line };
}

export type PhysicalPlan =
  | { type: 'full'; reason: string }
  | { type: 'incremental'; parent: Manifest & { physical: NonNullable<Manifest['physical']> } };

/**
 * Full or incremental? An incremental needs a usable base: the newest physical backup of the same
 * server (same server id and host) whose chain is shorter than `maxChainLength`. Otherwise a full
 * backup is taken, and the reason says why.
 */
export function planPhysical(
  requested: 'full' | 'incremental',
  previous: readonly Manifest[],
  server: { serverId: number; hostname: string },
  maxChainLength: number,
): PhysicalPlan {
  if (requested === 'full') return { type: 'full', reason: 'a full backup was asked for' };
  const base = previous.find((m) => m.type === 'full' || m.type === 'incremental');
  if (!base?.physical) return { type: 'full', reason: 'no physical backup to build on' };
  if (base.server.serverId !== server.serverId || base.server.hostname !== server.hostname) {
    return { type: 'full', reason: `the last physical backup ${base.id} came from another server (${base.server.hostname}, id ${base.server.serverId})` };
  }
  if (base.physical.chainLength >= maxChainLength) {
    return { type: 'full', reason: `the chain of ${base.id} reached its maximum length (${maxChainLength})` };
  }
  return { type: 'incremental', parent: base as Manifest & { physical: NonNullable<Manifest['physical']> } };
}
