import { parseGtidPosition } from '../binlog/events.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { PitrTarget } from '../restore/pitr.ts';
import type { RecordedTable } from '../restore/verify-datadir.ts';

/**
 * Pure decisions of the restore depth of `agent verify`: how much disk one datadir needs, whether
 * there is that much, and whether the figures recorded at backup time describe the restored data.
 */

const MiB = 1024 ** 2;

/**
 * What a fresh datadir holds before any table: system tables, the undo and system tablespaces and
 * a 64 MiB redo log (the throwaway server's innodb_log_file_size), with room to spare.
 */
export const EMPTY_DATADIR_BYTES = 256 * MiB;

/**
 * Pure: about how many bytes one restored datadir takes, from the manifests' raw sizes. A dump's
 * SQL text becomes InnoDB pages and indexes: counted twice. A physical chain is unpacked whole
 * (the full, and each incremental next to it until prepared): the sum of its raw sizes.
 */
export function datadirEstimate(chain: readonly Pick<Manifest, 'type' | 'rawSizeBytes'>[]): number {
  const raw = chain.reduce((sum, m) => sum + m.rawSizeBytes, 0);
  const dump = chain.length === 1 && chain[0]?.type === 'dump';
  return EMPTY_DATADIR_BYTES + (dump ? 2 * raw : raw);
}

/** Pure: the refusal when `free` bytes in `path` cannot hold `needed`; undefined when they can. */
export function spaceRefusal(input: { path: string; needed: number; free: number }): string | undefined {
  if (input.free >= input.needed) return undefined;
  return `not enough free disk space in ${input.path} for the throwaway datadir: about ${input.needed} bytes needed (${formatMiB(input.needed)}), ${input.free} bytes free (${formatMiB(input.free)})`;
}

const formatMiB = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

export type FiguresVerdict =
  /** Compare the restored tables with these (`schema.table` → figures). */
  | { compare: true; recorded: Map<string, RecordedTable> }
  /** Nothing to compare with: `notice` says why; the tables are checked against themselves only. */
  | { compare: false; notice: string };

const SELF_ONLY = 'its tables were checked against themselves only (CHECK TABLE, CHECKSUM TABLE, row counts)';

/** What the restore did to the data after the backup: nothing, replayed the binlog to its end, or to the figures' point. */
export type Replayed = 'none' | 'to-end' | 'to-figures';

/**
 * Pure: whether the figures recorded with `backup` (the last of its chain) describe what the
 * restore produced: when their snapshot's binlog position is the backup's own and nothing was
 * replayed, or when the binlog was replayed exactly to their point.
 */
export function figuresVerdict(backup: Pick<Manifest, 'id' | 'binlog' | 'figures'>, replayed: Replayed): FiguresVerdict {
  const figures = backup.figures;
  if (!figures) return { compare: false, notice: `backup ${backup.id} has no figures recorded at backup time: ${SELF_ONLY}` };
  const not = (why: string): FiguresVerdict => ({ compare: false, notice: `the figures recorded with backup ${backup.id} were not compared: ${why}; ${SELF_ONLY}` });
  if (figures.method !== 'consistent-snapshot') return not(`they were taken by a method this agent does not know (${figures.method})`);
  const recorded = { compare: true as const, recorded: new Map(figures.tables.map((t) => [`${t.schema}.${t.table}`, { rows: t.rows, checksum: t.checksum }])) };
  if (replayed === 'to-figures') return recorded;
  if (replayed === 'to-end') return not(`they describe the backup's point, and the binlog was replayed past it`);
  const own = backup.binlog;
  if (!own) return not('the backup records no binlog position to match them with');
  if (!samePoint(figures.at, own)) {
    return not(`they describe binlog position ${figures.at.file}:${figures.at.position}, the backup ${own.file}:${own.position} (transactions committed between the two snapshots)`);
  }
  return recorded;
}

const samePoint = (a: { file: string; position: number }, b: { file: string; position: number }): boolean => a.file === b.file && a.position === b.position;

/**
 * Pure: the GTID to replay the archive to so that a restore of `backup` reaches the point its
 * figures describe, when they were taken after it (writes between the two snapshots); undefined
 * when there is no such point to reach (no figures, the same point, no single-domain GTID).
 */
export function figuresReplayTarget(backup: Pick<Manifest, 'binlog' | 'figures'>): PitrTarget | undefined {
  const figures = backup.figures;
  if (!figures || figures.method !== 'consistent-snapshot' || !backup.binlog || samePoint(figures.at, backup.binlog) || !figures.at.gtid) return undefined;
  let position;
  try {
    position = parseGtidPosition(figures.at.gtid);
  } catch {
    // Not a MariaDB GTID position (a MySQL GTID set): no target this agent can replay to.
    return undefined;
  }
  const [entry, ...more] = [...position.entries()];
  if (!entry || more.length > 0) return undefined;
  return { kind: 'gtid', gtid: { domain: entry[0], serverId: entry[1].serverId, sequence: entry[1].sequence }, text: figures.at.gtid };
}
