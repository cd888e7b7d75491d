import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AgentError } from '../errors.ts';
import { draftDue, fileFinished, serverLostBinlog, tailIdle } from './capture-decisions.ts';
import { DraftBuilder, type SegmentDraft } from './draft.ts';
import { EventScanner, EventType } from './events.ts';
import { checkedBinlogName, type ResumePoint } from './resume.ts';
import { laterFile, readFileHeader } from './spool-files.ts';

/** The format description of a spooled file: who wrote it, when the server created it, its checksums. */
export interface FileHeader {
  serverId: number;
  createdAt: string;
  checksumAlg: number;
}

/** What one pass over the current file saw. */
export interface TailPass {
  /** The file's size when the pass began; -1 while the tool has not created it. */
  size: number;
  /** The next file the tool has started writing, if any. */
  later: string | undefined;
  /** This file is read to its end and the tool has moved on: once idle, the tail advances. */
  finished: boolean;
}

export interface SpoolTailOptions {
  /** The database entry's name (for errors and name checks). */
  database: string;
  /** The most bytes in one segment (binlog.segment_size_mb). */
  segmentBytes: number;
  /** What the archive already holds of `file`: read once per file, when its header is first seen. */
  archivedPart: (file: string) => Promise<{ end: number; fileCreatedAt: string } | undefined>;
  log: Logger;
  /** The buffer spool reads go through: one for the whole capture, the scanner copies only a partial event's tail. */
  readBuffer: Buffer;
}

/**
 * Follows the binlog files mariadb-binlog writes into the spool, one file at a time, from a resume
 * point: reads what was appended, frames it into events and folds them into segment drafts. It
 * knows nothing of storage beyond what the archive holds of a file; the capture uploads the drafts
 * it hands out and tells it how far the archive reaches.
 */
export class SpoolTail {
  readonly #dir: string;
  readonly #options: SpoolTailOptions;
  #file: string;
  /** Where the archive's copy of the file ends. */
  #offset: number;
  #follows: { file: string; end: number } | null;
  /** Where the capture restarts if the tool exits now. */
  #resume: ResumePoint;
  #header: FileHeader | undefined;
  #scanner: EventScanner | undefined;
  #drafts: DraftBuilder | undefined;
  /** Bytes of the file read so far. */
  #scanned = 0;
  /** Drafts closed and not yet archived, oldest first. */
  readonly #ready: SegmentDraft[] = [];

  constructor(dir: string, resume: ResumePoint, options: SpoolTailOptions) {
    this.#dir = dir;
    this.#options = options;
    this.#resume = resume;
    this.#file = resume.file;
    this.#offset = resume.offset;
    this.#follows = resume.follows ?? null;
  }

  get file(): string {
    return this.#file;
  }

  /** The spooled copy of the current file. */
  get path(): string {
    return join(this.#dir, this.#file);
  }

  /** Where the archive's copy of the current file ends. */
  get archived(): number {
    return this.#offset;
  }

  /** The file whose end the current file follows (for a segment starting at 0), or null. */
  get follows(): { file: string; end: number } | null {
    return this.#follows;
  }

  /** Where a restarted tool resumes: the last archived segment's end, or the start of the file the tail moved on to. */
  get resume(): ResumePoint {
    return this.#resume;
  }

  /** The current file's header, once the tool has written it. */
  get header(): FileHeader | undefined {
    return this.#header;
  }

  /** The oldest segment ready to upload (none until the header is read). */
  get nextDraft(): SegmentDraft | undefined {
    return this.#header ? this.#ready[0] : undefined;
  }

  /**
   * Reads what the tool has appended: the header first (refusing a file of the same name from
   * before a reset of the server's numbering), then events until a segment fills or all is read,
   * so a backlog is read a segment at a time and memory stays flat.
   */
  async read(): Promise<TailPass> {
    const path = this.path;
    const size = await stat(path).then((s) => s.size, () => -1);
    if (size >= 0 && !this.#header) await this.#readHeader(path);
    const scanner = this.#scanner;
    const drafts = this.#drafts;
    if (scanner && drafts && size > this.#scanned) {
      const buffer = this.#options.readBuffer;
      const fh = await open(path, 'r');
      try {
        while (this.#scanned < size && this.#ready.length === 0) {
          const length = Math.min(size - this.#scanned, buffer.length);
          const { bytesRead } = await fh.read(buffer, 0, length, this.#scanned);
          if (bytesRead === 0) break;
          this.#scanned += bytesRead;
          const at = Date.now();
          for (const event of scanner.push(buffer.subarray(0, bytesRead))) {
            if (event.type === EventType.HEARTBEAT) continue;
            if (event.rotateTo !== undefined) checkedBinlogName(this.#options.database, event.rotateTo, `a rotate event in ${this.#file}`);
            const closed = drafts.add(event, at);
            if (closed) this.#ready.push(closed);
          }
        }
      } finally {
        await fh.close();
      }
    }
    const later = await laterFile(this.#dir, this.#file);
    const finalSize = later !== undefined && size >= 0 ? (await stat(path)).size : -1;
    const progress = { later, finalSize, completeEnd: this.#scanner?.completeEnd, archived: this.#offset };
    if (serverLostBinlog(progress)) {
      this.#options.log.error({ file: this.#file, serverSize: finalSize, archived: this.#offset }, `${this.#file} on the server is shorter than the archived part: the server lost binlog it had written (crash without sync_binlog); the archive keeps it`);
    }
    return { size, later, finished: fileFinished(progress) };
  }

  /** Closes the filling segment when it is due (age, end of file, tool gone or stopping). */
  cutIfDue(now: number, segmentAgeMs: number, why: { finished: boolean; toolGone: boolean; stopping: boolean }): void {
    const filling = this.#drafts?.open;
    if (filling && draftDue(filling.since, now, segmentAgeMs, why)) this.#ready.push(this.#drafts?.close() as SegmentDraft);
  }

  /** The oldest ready draft is archived: the archive now reaches `end`. */
  archivedTo(end: number): void {
    this.#ready.shift();
    this.#offset = end;
    this.#resume = { file: this.#file, offset: end };
  }

  /** Nothing of the current file is waiting: no segment filling or ready, all it holds is read. */
  idle(pass: TailPass): boolean {
    return tailIdle({ filling: this.#drafts?.open !== undefined, ready: this.#ready.length, size: pass.size, scanned: this.#scanned });
  }

  /** The current file is archived: deletes its spooled copy and follows `later` from its start. */
  async advance(later: string): Promise<void> {
    this.#options.log.debug({ file: this.#file, next: later }, 'binlog file archived');
    await rm(this.path, { force: true });
    this.#follows = { file: this.#file, end: this.#offset };
    this.#file = later;
    this.#offset = 0;
    this.#header = undefined;
    this.#scanner = undefined;
    this.#drafts = undefined;
    this.#scanned = 0;
    this.#resume = { file: later, offset: 0, follows: this.#follows };
  }

  async #readHeader(path: string): Promise<void> {
    const header = await readFileHeader(path);
    if (!header) return;
    this.#header = header;
    // The archive may already hold part of this file: the same file (skip what is archived), or
    // a file of that name from before a reset of the numbering (refuse).
    const { database } = this.#options;
    const file = this.#file;
    const archived = await this.#options.archivedPart(file);
    if (archived && archived.fileCreatedAt !== header.createdAt) {
      throw new AgentError(
        'integrity',
        `binlog capture of ${database}: ${file} on the server was created at ${header.createdAt}, the archived ${file} at ${archived.fileCreatedAt}: the server's binlog numbering was reset (rebuilt server, or RESET MASTER)`,
        { hint: `archive this server under a new database name, or move ${database}/binlog/ aside in the storage` },
      );
    }
    if (archived && archived.end > this.#offset) this.#offset = archived.end;
    this.#scanner = new EventScanner(this.#offset, header.checksumAlg);
    this.#drafts = new DraftBuilder(this.#offset, this.#options.segmentBytes);
    this.#scanned = this.#offset;
  }
}
