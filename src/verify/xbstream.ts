import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';

/**
 * Reads an xbstream (mariadb-backup --stream=xbstream) as it flows by, without keeping it: which
 * files it holds, whether each file's chunks are whole with valid CRC-32s and end with its EOF
 * chunk, and the text of the few small files that say what the backup is (xtrabackup_checkpoints,
 * backup-my.cnf). The format (Percona's doc/xbstream.md; mbstream reads the same): chunks of
 *
 *   "XBSTCK01" | flags u8 | type u8 ('P' payload, 'S' sparse, 'E' end of file) | path length u32 | path
 *   P: payload length u64 | offset u64 | crc32 u32 | payload
 *   S: sparse map entries u32 | payload length u64 | offset u64 | crc32 u32 | map (8 bytes each) | payload
 *
 * all little-endian; the CRC-32 covers the sparse map and the payload.
 */

const MAGIC = Buffer.from('XBSTCK01', 'latin1');
const FIXED = 14; // magic, flags, type, path length
const MAX_PATH = 4096;
/** Files whose content is kept (they are a few hundred bytes): the checks read them. */
const KEPT = new Set(['xtrabackup_checkpoints', 'backup-my.cnf']);
const KEEP_LIMIT = 64 * 1024;

export interface XbstreamFile {
  chunks: number;
  bytes: number;
  ended: boolean;
}

export class XbstreamError extends Error {
  override name = 'XbstreamError';
}

type State =
  | { at: 'fixed' }
  | { at: 'path'; type: number; length: number }
  | { at: 'sizes'; type: number; path: string }
  | { at: 'body'; path: string; left: number; crc: number; expected: number };

export class XbstreamScanner extends Writable {
  readonly files = new Map<string, XbstreamFile>();
  /** The content of the small files in KEPT, by path. */
  readonly kept = new Map<string, string>();
  /** Bytes of the stream read (the decompressed xbstream). */
  bytes = 0;
  #state: State = { at: 'fixed' };
  #pending: Buffer = Buffer.alloc(0);
  #keeping: Buffer[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      this.#take(chunk);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#state.at !== 'fixed' || this.#pending.length > 0) {
      callback(new XbstreamError(`the xbstream ends inside a chunk, at byte ${this.bytes}: it is cut short`));
      return;
    }
    callback();
  }

  /** Collects `want` bytes of a header into #pending; undefined until they are all there. */
  #gather(bytes: Buffer, at: number, want: number): { header: Buffer; at: number } | { at: number; header?: undefined } {
    const take = Math.min(want - this.#pending.length, bytes.length - at);
    this.#pending = this.#pending.length === 0 && take === want ? bytes.subarray(at, at + take) : Buffer.concat([this.#pending, bytes.subarray(at, at + take)]);
    if (this.#pending.length < want) return { at: at + take };
    const header = this.#pending;
    this.#pending = Buffer.alloc(0);
    return { header, at: at + take };
  }

  #take(bytes: Buffer): void {
    let at = 0;
    this.bytes += bytes.length;
    while (at < bytes.length) {
      const state = this.#state;
      if (state.at === 'fixed') {
        const got = this.#gather(bytes, at, FIXED);
        at = got.at;
        if (!got.header) break;
        if (!got.header.subarray(0, 8).equals(MAGIC)) throw new XbstreamError(`no xbstream chunk at byte ${this.bytes - bytes.length + at - FIXED}: the magic XBSTCK01 is missing`);
        const type = got.header.readUInt8(9);
        const length = got.header.readUInt32LE(10);
        if (length === 0 || length > MAX_PATH) throw new XbstreamError(`an xbstream chunk names a path of ${length} bytes`);
        this.#state = { at: 'path', type, length };
      } else if (state.at === 'path') {
        const got = this.#gather(bytes, at, state.length);
        at = got.at;
        if (!got.header) break;
        const path = got.header.toString('utf8');
        if (state.type === 0x45 /* E */) {
          this.#file(path).ended = true;
          this.#finishKept(path);
          this.#state = { at: 'fixed' };
        } else if (state.type === 0x50 /* P */ || state.type === 0x53 /* S */) {
          this.#state = { at: 'sizes', type: state.type, path };
        } else {
          throw new XbstreamError(`chunk of ${path} has an unknown type 0x${state.type.toString(16)}`);
        }
      } else if (state.at === 'sizes') {
        const sparse = state.type === 0x53;
        const got = this.#gather(bytes, at, sparse ? 24 : 20);
        at = got.at;
        if (!got.header) break;
        const h = got.header;
        const entries = sparse ? h.readUInt32LE(0) : 0;
        const base = sparse ? 4 : 0;
        const length = h.readBigUInt64LE(base);
        const expected = h.readUInt32LE(base + 16);
        const left = Number(length) + entries * 8;
        if (!Number.isSafeInteger(left)) throw new XbstreamError(`chunk of ${state.path} claims ${length} bytes`);
        const file = this.#file(state.path);
        if (file.ended) throw new XbstreamError(`${state.path} has data after its end-of-file chunk`);
        file.chunks += 1;
        file.bytes += Number(length);
        this.#state = { at: 'body', path: state.path, left, crc: 0, expected };
        if (left === 0) this.#endBody();
      } else {
        const take = Math.min(state.left, bytes.length - at);
        const part = bytes.subarray(at, at + take);
        state.crc = crc32(part, state.crc);
        state.left -= take;
        at += take;
        if (KEPT.has(state.path) && this.#keptBytes() < KEEP_LIMIT) this.#keeping.push(Buffer.from(part));
        if (state.left === 0) this.#endBody();
      }
    }
  }

  #endBody(): void {
    const state = this.#state;
    if (state.at !== 'body') return;
    if (state.crc >>> 0 !== state.expected >>> 0) {
      throw new XbstreamError(`a chunk of ${state.path} fails its CRC-32 (stored ${state.expected.toString(16)}, computed ${(state.crc >>> 0).toString(16)})`);
    }
    this.#state = { at: 'fixed' };
  }

  #keptBytes(): number {
    return this.#keeping.reduce((n, b) => n + b.length, 0);
  }

  #finishKept(path: string): void {
    if (!KEPT.has(path)) return;
    this.kept.set(path, Buffer.concat(this.#keeping).toString('utf8'));
    this.#keeping = [];
  }

  #file(path: string): XbstreamFile {
    let file = this.files.get(path);
    if (!file) {
      file = { chunks: 0, bytes: 0, ended: false };
      this.files.set(path, file);
    }
    return file;
  }
}

/** What the checks need to know about the backup the stream should be. */
export interface XbstreamExpectation {
  type: 'full' | 'incremental';
  fromLsn?: string | undefined;
  toLsn?: string | undefined;
}

/** `key = value` lines of xtrabackup_checkpoints or backup-my.cnf. */
export function parseSettings(text: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) settings.set((m[1] as string).replace(/-/g, '_'), m[2] as string);
  }
  return settings;
}

/** The system tablespace files `innodb_data_file_path` names (`ibdata1:12M:autoextend` → ibdata1). */
export function systemTablespaces(dataFilePath: string | undefined): string[] {
  return (dataFilePath ?? 'ibdata1:12M:autoextend')
    .split(';')
    .map((part) => part.split(':')[0]?.trim() ?? '')
    .filter(Boolean);
}

/**
 * Pure: what is wrong with an xbstream's file list for `mariadb-backup --prepare`: the files every
 * prepare reads (xtrabackup_checkpoints, backup-my.cnf, the redo log copy ib_logfile0), the system
 * tablespace (a full backup: the file; an incremental: its .delta with .meta), a .meta for every
 * .delta, every file closed by its end-of-file chunk, and checkpoints that say the same backup
 * type and LSNs as the manifest. Empty when nothing is wrong.
 */
export function prepareProblems(files: ReadonlyMap<string, XbstreamFile>, kept: ReadonlyMap<string, string>, expected: XbstreamExpectation): string[] {
  const problems: string[] = [];
  const has = (path: string) => files.has(path);
  const missing = new Set<string>();
  for (const path of ['xtrabackup_checkpoints', 'backup-my.cnf', 'ib_logfile0']) {
    if (!has(path)) problems.push(`the xbstream holds no ${path}, which mariadb-backup --prepare needs`);
  }
  const cnf = parseSettings(kept.get('backup-my.cnf') ?? '');
  for (const space of systemTablespaces(cnf.get('innodb_data_file_path'))) {
    const needed = expected.type === 'full' ? [space] : [`${space}.delta`, `${space}.meta`];
    for (const path of needed) if (!has(path) && !missing.has(path) && missing.add(path)) problems.push(`the xbstream holds no ${path} (the system tablespace${expected.type === 'incremental' ? `'s changes` : ''}), which mariadb-backup --prepare needs`);
  }
  for (const path of files.keys()) {
    if (path.endsWith('.delta') && !has(`${path.slice(0, -'.delta'.length)}.meta`) && !missing.has(`${path.slice(0, -'.delta'.length)}.meta`)) problems.push(`the xbstream holds ${path} without its ${path.slice(0, -'.delta'.length)}.meta`);
  }
  const open = [...files.entries()].filter(([, f]) => !f.ended).map(([path]) => path);
  if (open.length > 0) problems.push(`the xbstream ends before the end of ${open.slice(0, 3).join(', ')}${open.length > 3 ? ` and ${open.length - 3} more files` : ''}`);
  const checkpoints = kept.get('xtrabackup_checkpoints');
  if (checkpoints !== undefined) {
    const c = parseSettings(checkpoints);
    const type = c.get('backup_type');
    const wanted = expected.type === 'full' ? 'full-backuped' : 'incremental';
    if (type !== wanted) problems.push(`xtrabackup_checkpoints says backup_type = ${type ?? '(none)'}, the manifest a${expected.type === 'full' ? ' full' : 'n incremental'} backup (${wanted})`);
    for (const [field, value] of [['from_lsn', expected.fromLsn], ['to_lsn', expected.toLsn]] as const) {
      if (value !== undefined && c.get(field) !== value) problems.push(`xtrabackup_checkpoints says ${field} = ${c.get(field) ?? '(none)'}, the manifest ${value}`);
    }
  }
  return problems;
}
