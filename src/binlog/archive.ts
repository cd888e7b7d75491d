import type { Manifest } from '../catalog/manifest.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { readCompleteMarker, type CompleteMarker } from './complete-marker.ts';
import { compareFiles, findRuns, listSegments, readSegment, type ArchiveGap, type FileFacts, type SegmentManifest, type SegmentRef } from './segments.ts';

/**
 * The binlog archive of one database as a whole: its contiguous runs, the gaps between them, and
 * the last recoverable time. Reads the segment keys, plus the manifests of the first segment of
 * each file (which server wrote it) and of the ends of each run (times).
 */

export interface RunSummary {
  from: { file: string; position: number; at: string };
  to: { file: string; position: number; at: string; gtid: string | null };
  segments: number;
}

export interface ArchiveSummary {
  segments: number;
  runs: RunSummary[];
  gaps: { after: string; before: string; reason: string }[];
  /**
   * The latest moment a point-in-time restore can reach: the last archived event of the newest
   * run that a backup's binlog position lies in, or later when the complete-through marker says
   * that run was complete at a later time (an idle server); null when no run starts at or before
   * a backup.
   */
  lastRecoverableAt: string | null;
  /** The backup that last recoverable time builds on. */
  base: string | null;
  /** Where the archive run holding the last recoverable time ends. */
  recoverableTo: { file: string; position: number } | null;
  /** The complete-through marker (see complete-marker.ts), when there is a valid one. */
  completeThrough: { file: string; position: number; through: string } | null;
  /** Why the marker was not used (unreadable, invalid); absent when fine. */
  completeThroughProblem?: string;
}

export class Archive {
  readonly refs: SegmentRef[];
  readonly runs: SegmentRef[][];
  readonly gaps: ArchiveGap[];
  /** The complete-through marker, if valid; `markerProblem` says why one was not used. */
  marker: CompleteMarker | undefined;
  markerProblem: string | undefined;
  readonly #storage: StorageDriver;
  readonly #cache = new Map<string, Promise<SegmentManifest>>();

  private constructor(storage: StorageDriver, refs: SegmentRef[], runs: SegmentRef[][], gaps: ArchiveGap[]) {
    this.#storage = storage;
    this.refs = refs;
    this.runs = runs;
    this.gaps = gaps;
  }

  static async load(storage: StorageDriver, database: string): Promise<Archive> {
    const refs = await listSegments(storage, database);
    const archive = new Archive(storage, refs, [], []);
    // Which server wrote each file: from the manifest of its first segment.
    const firstOfFile = new Map<string, SegmentRef>();
    for (const ref of refs) if (!firstOfFile.has(ref.file)) firstOfFile.set(ref.file, ref);
    const facts = new Map<string, FileFacts>();
    await Promise.all(
      [...firstOfFile.values()].map(async (ref) => {
        const manifest = await archive.manifest(ref);
        facts.set(ref.file, { serverId: manifest.serverId, follows: ref.start === 0 ? manifest.follows : undefined });
      }),
    );
    const { runs, gaps } = findRuns(refs, (file) => facts.get(file));
    const loaded = new Archive(storage, refs, runs.map((r) => r.segments), gaps).#adopt(archive);
    const { marker, problem } = await readCompleteMarker(storage, database);
    loaded.marker = marker;
    loaded.markerProblem = problem;
    return loaded;
  }

  /**
   * The latest time a replay along `run` can reach: its last event, or the marker's time when
   * the marker's position is the end of a segment of this run (everything up to there is in it).
   */
  async reachedAt(run: readonly SegmentRef[]): Promise<string> {
    const last = await this.manifest(run.at(-1) as SegmentRef);
    const marker = this.marker;
    const covered = marker !== undefined && run.some((s) => s.file === marker.file && s.end === marker.position);
    if (!covered || Date.parse(marker.through) <= Date.parse(last.lastEventAt)) return last.lastEventAt;
    return marker.through;
  }

  #adopt(other: Archive): this {
    for (const [k, v] of other.#cache) this.#cache.set(k, v);
    return this;
  }

  manifest(ref: SegmentRef): Promise<SegmentManifest> {
    let found = this.#cache.get(ref.key);
    if (!found) {
      found = readSegment(this.#storage, ref);
      this.#cache.set(ref.key, found);
    }
    return found;
  }

  /** The run holding byte `position` of `file` with the file's beginning (its format description). */
  runFrom(file: string, position: number): SegmentRef[] | undefined {
    return this.runs.find((run) => {
      const first = run.findIndex((s) => s.file === file && s.start === 0);
      return first >= 0 && run.some((s) => (s.file === file && s.end >= position) || compareFiles(s.file, file) > 0);
    });
  }

  async summarize(backups: readonly Manifest[]): Promise<ArchiveSummary> {
    const runs: RunSummary[] = [];
    for (const run of this.runs) {
      const first = run[0] as SegmentRef;
      const last = run.at(-1) as SegmentRef;
      const [a, b] = await Promise.all([this.manifest(first), this.manifest(last)]);
      runs.push({
        from: { file: first.file, position: first.start, at: a.firstEventAt },
        to: { file: last.file, position: last.end, at: b.lastEventAt, gtid: b.gtidLast },
        segments: run.length,
      });
    }
    let lastRecoverableAt: string | null = null;
    let base: string | null = null;
    let recoverableTo: ArchiveSummary['recoverableTo'] = null;
    for (let i = this.runs.length - 1; i >= 0 && lastRecoverableAt === null; i--) {
      const run = this.runs[i] as SegmentRef[];
      const inRun = backups.find((m) => m.binlog && this.runFrom(m.binlog.file, m.binlog.position) === run);
      if (inRun) {
        const summary = runs[i];
        lastRecoverableAt = await this.reachedAt(run);
        base = inRun.id;
        recoverableTo = summary ? { file: summary.to.file, position: summary.to.position } : null;
      }
    }
    return {
      segments: this.refs.length,
      runs,
      gaps: this.gaps.map((g) => ({ after: `${g.after.file}:${g.after.end}`, before: `${g.before.file}:${g.before.start}`, reason: g.reason })),
      lastRecoverableAt,
      base,
      recoverableTo,
      completeThrough: this.marker ? { file: this.marker.file, position: this.marker.position, through: this.marker.through } : null,
      ...(this.markerProblem === undefined ? {} : { completeThroughProblem: this.markerProblem }),
    };
  }
}

/** Segments of `run` from the beginning of `file` on, in order. */
export function segmentsFrom(run: readonly SegmentRef[], file: string): SegmentRef[] {
  const index = run.findIndex((s) => s.file === file && s.start === 0);
  return index < 0 ? [] : run.slice(index).filter((s) => compareFiles(s.file, file) >= 0);
}
