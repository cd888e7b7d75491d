import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { Archive, segmentsFrom } from '../binlog/archive.ts';
import { EventScanner, EventType, formatGtid, parseGtidPosition, positionIncludes, type BinlogEvent } from '../binlog/events.ts';
import type { SegmentRef } from '../binlog/segments.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { startTool } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, Connection } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeToolFailure } from './client-error.ts';
import { decryptStages, type Decryption } from './decrypt.ts';
import { openVerified } from './fetch.ts';
import { GtidStrip } from './gtid-strip.ts';
import { schemaFilter } from './schema-filter.ts';

/**
 * Point-in-time recovery: a base backup, then the archived binlog replayed from the base's exact
 * position to the target, in one client session (temporary tables survive across files). The
 * target is a time (every transaction whose binlog timestamp is at or before it, 1-second
 * resolution as the server records) or a GTID (up to and including that transaction). The cut is
 * made here, on event boundaries, before the bytes reach mariadb-binlog.
 */

export type PitrTarget =
  | { kind: 'time'; at: Date; text: string }
  | { kind: 'gtid'; gtid: { domain: number; serverId: number; sequence: bigint }; text: string };

export function parseTarget(toTime: string | undefined, toGtid: string | undefined): PitrTarget | undefined {
  if (toTime !== undefined && toGtid !== undefined) throw new AgentError('usage', '--to-time and --to-gtid: give one, not both');
  if (toTime !== undefined) {
    // An ISO 8601 time with a zone (Z or ±hh:mm): a bare local time would be ambiguous.
    if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(toTime) || Number.isNaN(Date.parse(toTime))) {
      throw new AgentError('usage', `--to-time ${toTime}: not an ISO 8601 time with a zone`, { hint: 'e.g. --to-time 2026-11-21T10:32:00Z or 2026-11-21T11:32:00+01:00' });
    }
    return { kind: 'time', at: new Date(toTime), text: new Date(toTime).toISOString() };
  }
  if (toGtid !== undefined) {
    let position;
    try {
      position = parseGtidPosition(toGtid);
    } catch (err) {
      throw new AgentError('usage', `--to-gtid ${toGtid}: ${messageOf(err)}`, { hint: 'e.g. --to-gtid 0-1-4711' });
    }
    const [entry, ...more] = [...position.entries()];
    if (!entry || more.length > 0) throw new AgentError('usage', `--to-gtid ${toGtid}: give exactly one GTID (domain-server-sequence)`);
    return { kind: 'gtid', gtid: { domain: entry[0], serverId: entry[1].serverId, sequence: entry[1].sequence }, text: toGtid };
  }
  return undefined;
}

/**
 * Pure: the newest backup with binlog coordinates that does not go past the target. A time target
 * takes backups completed at or before it (a dump's snapshot is at its start, a physical backup's
 * at its end); a GTID target takes backups whose GTID position has not passed it.
 */
export function chooseBase(backups: readonly Manifest[], target: PitrTarget, types: readonly Manifest['type'][]): Manifest | undefined {
  return backups.find((m) => {
    if (!m.binlog || !types.includes(m.type)) return false;
    if (target.kind === 'time') return Date.parse(m.completedAt) <= target.at.getTime();
    if (!m.binlog.gtid) return false;
    const at = parseGtidPosition(m.binlog.gtid).get(target.gtid.domain);
    return at === undefined || at.sequence <= target.gtid.sequence;
  });
}

/**
 * Decides where replay stops: before the first transaction past the target. Time: a transaction
 * (GTID event) stamped after the target second. GTID: the transaction after the target one.
 */
export class ReplayCut {
  readonly #target: PitrTarget;
  #seenTarget = false;
  stopped = false;
  /** The last transaction let through at or after `from`. */
  last: { gtid: string; at: number; file: string; position: number } | undefined;
  transactions = 0;

  constructor(target: PitrTarget) {
    this.#target = target;
  }

  /** True when `event` is past the target: nothing from it on may be replayed. */
  pastTarget(event: BinlogEvent): boolean {
    if (event.type !== EventType.GTID || !event.gtid) return false;
    if (this.#target.kind === 'time') return event.timestamp > Math.floor(this.#target.at.getTime() / 1000);
    if (this.#seenTarget) return true;
    const { domain, sequence } = this.#target.gtid;
    if (event.gtid.domain === domain && event.gtid.sequence > sequence) return true;
    if (event.gtid.domain === domain && event.gtid.sequence === sequence) this.#seenTarget = true;
    return false;
  }

  /**
   * One file's bytes (from its beginning) in, whole events out, ending at the cut. Returning early
   * stops reading: the rest of the archive is never fetched.
   */
  filter(file: string, from: number): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
    return async function* (this: ReplayCut, source: AsyncIterable<Buffer>) {
      const scanner = new EventScanner(0);
      let held: Buffer = Buffer.alloc(0); // file bytes [passed, received)
      let passed = 0;
      for await (const chunk of source) {
        held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
        let until = -1;
        for (const event of scanner.push(chunk)) {
          if (this.pastTarget(event)) {
            this.stopped = true;
            until = event.position;
            break;
          }
          if (event.gtid && event.position >= from) {
            this.transactions++;
            this.last = { gtid: formatGtid(event.gtid), at: event.timestamp, file, position: event.position };
          }
        }
        if (until < 0) until = scanner.completeEnd;
        if (until > passed) {
          yield held.subarray(0, until - passed);
          held = held.subarray(until - passed);
          passed = until;
        }
        if (this.stopped) return;
      }
    }.bind(this);
  }
}

export interface PitrPlan {
  base: Manifest;
  /** The run of segments replay reads, from the beginning of the base's binlog file. */
  segments: SegmentRef[];
  from: { file: string; position: number };
}

/**
 * Pure over the archive: checks that the binlog covers base → target and returns what to read.
 * Refuses a target in a gap or past the archive, naming the last recoverable time.
 */
export async function planReplay(archive: Archive, base: Manifest, target: PitrTarget, lastRecoverable: string | null): Promise<PitrPlan> {
  const binlog = base.binlog;
  if (!binlog) throw new AgentError('refused', `backup ${base.id} has no binlog coordinates to replay from`);
  const run = archive.runFrom(binlog.file, binlog.position);
  const last = lastRecoverable ? `; the last recoverable time is ${lastRecoverable}` : '; nothing is recoverable to a point in time yet';
  if (!run) {
    throw new AgentError('refused', `point-in-time restore to ${target.text}: the binlog archive does not hold ${binlog.file} from its start up to position ${binlog.position}, where backup ${base.id} ends${last}`, {
      hint: 'binlog capture must be running (binlog.enabled with agent daemon) since before that backup',
    });
  }
  const end = await archive.manifest(run.at(-1) as SegmentRef);
  const reached =
    target.kind === 'time' ? Date.parse(await archive.reachedAt(run)) >= Math.floor(target.at.getTime() / 1000) * 1000 : await gtidReached(archive, run, target.gtid);
  if (!reached) {
    const gap = archive.gaps.find((g) => g.after.key === (run.at(-1) as SegmentRef).key);
    throw new AgentError(
      'refused',
      `point-in-time restore to ${target.text}: ${gap ? `it lies in a gap of the binlog archive (${gap.reason})` : 'it is past the end of the binlog archive'}${last}`,
      { hint: `choose a target at or before ${end.lastEventAt}${end.gtidLast ? ` (GTID ${end.gtidLast})` : ''}` },
    );
  }
  return { base, segments: segmentsFrom(run, binlog.file), from: { file: binlog.file, position: binlog.position } };
}

/**
 * Does the run reach the GTID? A segment's gtidLast names only the domains it holds, so walk back
 * from the run's end to the newest segment with a transaction of the target's domain.
 */
async function gtidReached(archive: Archive, run: readonly SegmentRef[], gtid: { domain: number; sequence: bigint }): Promise<boolean> {
  for (let i = run.length - 1; i >= 0; i--) {
    const last = (await archive.manifest(run[i] as SegmentRef)).gtidLast;
    const position = last === null ? undefined : parseGtidPosition(last);
    if (position?.has(gtid.domain)) return positionIncludes(position, gtid);
  }
  return false;
}

export interface ReplayOptions {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  archive: Archive;
  plan: PitrPlan;
  target: PitrTarget;
  connection: Connection;
  targetName: string;
  skipBinlog: boolean;
  /** Replay only writes to these schemas (a dump's); undefined: everything (a physical base). */
  schemas?: ReadonlySet<string>;
  /** SQL sent first in the session (e.g. FLUSH PRIVILEGES on a server started without grant checks). */
  preamble?: string;
  /** How encrypted segments are decrypted (the identity file). */
  decryption: Decryption;
  logger: Logger;
  signal?: AbortSignal;
}

export interface ReplayResult {
  transactions: number;
  last: { gtid: string; at: string; file: string; position: number } | undefined;
}

/** Replays the planned binlog into the target server through mariadb-binlog and one mariadb session. */
export async function replayBinlog(options: ReplayOptions): Promise<ReplayResult> {
  const { plan, storage, archive } = options;
  const binlogTool = await locateTool(options.config.tools.binlog, ['mariadb-binlog', 'mysqlbinlog'], 'tools.binlog');
  const client = await locateTool(options.config.tools.client, ['mariadb', 'mysql'], 'tools.client');
  const cut = new ReplayCut(options.target);
  const files = [...new Set(plan.segments.map((s) => s.file))];
  options.logger.info({ from: plan.from, files, target: options.target.text }, 'binlog replay started');

  await withDefaultsFile(options.connection, client.flavor, async (defaultsFile) => {
    const args = [`--defaults-file=${defaultsFile}`, '--batch', '--binary-mode', '--max-allowed-packet=1G'];
    if (options.skipBinlog) args.push('--init-command=SET sql_log_bin=0');
    const cancel = new AbortController();
    options.signal?.addEventListener('abort', () => cancel.abort(options.signal?.reason), { once: true });
    const session = startTool(client.path, args, { stdin: 'pipe', stdout: 'ignore', signal: cancel.signal });
    let sessionError: unknown;
    session.done.catch((err: unknown) => (sessionError = err));
    const hint = 'the SQL client stopped there; the target holds the base and part of the replay';
    // The client may die only after the last bytes of a file went into its pipe (it runs behind):
    // its error then belongs to the last file fed, not to the replay as a whole.
    let fed: string | undefined;
    try {
      if (options.preamble) session.stdin.write(options.preamble);
      for (const file of files) {
        if (cut.stopped) break;
        const segments = plan.segments.filter((s) => s.file === file);
        const startAt = file === plan.from.file ? plan.from.position : 0;
        const reader = startTool(binlogTool.path, [...(startAt > 4 ? [`--start-position=${startAt}`] : []), '-'], { stdin: 'pipe', stdout: 'pipe', signal: cancel.signal });
        const source = Readable.from(segmentBytes(storage, archive, segments, cancel.signal, options.decryption));
        const feed = options.schemas
          ? pipeline(source, cut.filter(file, startAt), schemaFilter(options.schemas, startAt), reader.stdin)
          : pipeline(source, cut.filter(file, startAt), reader.stdin);
        const forward = pipeline(reader.stdout, new GtidStrip(), session.stdin, { end: false });
        fed = file;
        const [fedFile, forwarded, exited] = await Promise.allSettled([feed, forward, reader.done]);
        const failed = [exited, fedFile, forwarded].find((r) => r.status === 'rejected');
        if (failed) {
          // A client that died makes the pipe into it fail: its own error (the SQL error) is the cause.
          await Promise.race([session.done.catch(() => undefined), sleep(2000)]);
          const reason = sessionError ?? (failed as PromiseRejectedResult).reason;
          cancel.abort();
          throw reason instanceof AgentError ? reason : new AgentError('tool', `replay ${file} into ${options.targetName}: ${describeToolFailure(reason)}`, { hint, cause: reason });
        }
      }
      session.stdin.end();
      await session.done;
    } catch (err) {
      cancel.abort();
      await session.done.catch(() => undefined);
      if (err instanceof AgentError) throw err;
      throw new AgentError('tool', `replay ${fed ?? 'binlog'} into ${options.targetName}: ${describeToolFailure(err)}`, { hint, cause: err });
    }
  });
  const last = cut.last ? { ...cut.last, at: new Date(cut.last.at * 1000).toISOString() } : undefined;
  options.logger.info({ transactions: cut.transactions, last }, 'binlog replay completed');
  return { transactions: cut.transactions, last };
}

/** The bytes of consecutive segments of one file, each verified against its manifest. */
export async function* segmentBytes(storage: StorageDriver, archive: Archive, segments: readonly SegmentRef[], signal: AbortSignal, decryption: Decryption): AsyncGenerator<Buffer> {
  for (const ref of segments) {
    const manifest = await archive.manifest(ref);
    const source = await openVerified(storage, { ...manifest.object, role: 'data' }, { signal });
    const decompress = createDecompressor(manifest.object.compression);
    const decrypt = await decryptStages(manifest.encryption, decryption, `read binlog segment ${manifest.object.key}`, signal);
    // Any stage's failure destroys them all (age is killed) and ends the loop below with it; so
    // does a consumer that stops reading (the loop destroys `decompress`).
    const done = pipeline([source, ...decrypt, decompress]);
    done.catch(() => undefined);
    for await (const chunk of decompress) yield chunk as Buffer;
    await done;
  }
}
