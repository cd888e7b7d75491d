import { Writable } from 'node:stream';
import type { Algorithm } from '../pipeline/compress.ts';

/**
 * What an archive that no manifest describes holds, told by its bytes, not its name: the outer
 * compression from the first bytes of the object, then the content from the first bytes after
 * decompression. Archives made by plain mysqldump/mariadb-dump (SQL, gzip or zstd) and by
 * mariabackup (xbstream, or a tar of its directory), as SkySQL and most hosts accept them.
 */

export type ForeignContent = 'sql' | 'xbstream' | 'tar';

/** Bytes enough to tell every format apart (a tar header's magic sits at 257). */
export const HEAD_BYTES = 512;

const startsWith = (head: Uint8Array, magic: readonly number[]) => magic.every((byte, i) => head[i] === byte);

/** The compression of an object from its first bytes, or why it cannot be read. */
export function outerCompression(head: Uint8Array): { compression: Algorithm } | { unsupported: string } {
  if (startsWith(head, [0x1f, 0x8b])) return { compression: 'gzip' };
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return { compression: 'zstd' };
  const text = Buffer.from(head.subarray(0, 40)).toString('latin1');
  if (text.startsWith('age-encryption.org/v1')) return { unsupported: 'it is encrypted with age (decrypt it first: age -d -i KEY FILE > PLAIN)' };
  if (text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----')) return { unsupported: 'it is age-encrypted in ASCII armor (decrypt it first: age -d -i KEY FILE > PLAIN)' };
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return { unsupported: 'it is xz-compressed, which the agent does not read (recompress it: xz -dc FILE | zstd > FILE.zst)' };
  if (text.startsWith('BZh')) return { unsupported: 'it is bzip2-compressed, which the agent does not read (recompress it: bzip2 -dc FILE | zstd > FILE.zst)' };
  if (startsWith(head, [0x04, 0x22, 0x4d, 0x18])) return { unsupported: 'it is lz4-compressed, which the agent does not read (recompress it: lz4 -dc FILE | zstd > FILE.zst)' };
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return { unsupported: 'it is a zip archive, which the agent does not read (unzip it and give the file inside)' };
  return { compression: 'none' };
}

const AGE_MAGIC = 'age-encryption.org/v1\n';
const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';

/**
 * What an age-encrypted object's first bytes tell (https://age-encryption.org/v1): whether it is
 * ASCII-armored, and the types of the header's recipient stanzas (`X25519`, `scrypt`, …) as far
 * as `head` reaches, in order. Undefined when it is not age. Reading the header's text is all this
 * does: decryption is age's (the CLI or the library).
 */
export function ageEnvelope(head: Uint8Array): { armored: boolean; stanzas: string[] } | undefined {
  let text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  let armored = false;
  if (text.startsWith(ARMOR_BEGIN)) {
    armored = true;
    const base64 = text.slice(ARMOR_BEGIN.length).replace(/-----END[\s\S]*$/, '').replace(/[\r\n]/g, '');
    text = Buffer.from(base64.slice(0, base64.length - (base64.length % 4)), 'base64').toString('latin1');
  }
  if (!text.startsWith(AGE_MAGIC)) return undefined;
  const stanzas: string[] = [];
  for (const line of text.slice(AGE_MAGIC.length).split('\n')) {
    if (line.startsWith('---')) break;
    const type = /^-> (\S+)/.exec(line)?.[1];
    if (type !== undefined) stanzas.push(type);
  }
  return { armored, stanzas };
}

/** Pure: what an age header's stanzas say the object was encrypted to, for messages. */
export function describeStanzas(stanzas: readonly string[]): string {
  if (stanzas.includes('scrypt')) return 'a passphrase (scrypt)';
  if (stanzas.length === 0) return 'recipients its header does not show';
  const counts = new Map<string, number>();
  for (const type of stanzas) counts.set(type, (counts.get(type) ?? 0) + 1);
  return `${[...counts].map(([type, n]) => `${n} ${type} recipient${n > 1 ? 's' : ''}`).join(', ')} (an age header does not name them)`;
}

/** Statements a SQL dump may start with, after comments. */
const SQL_START = /^(?:\uFEFF)?\s*(?:--|\/\*|#|(?:SET|CREATE|DROP|USE|INSERT|LOCK|UNLOCK|DELIMITER|START|BEGIN|ALTER|REPLACE)\b)/i;

/** The content after decompression from its first bytes: undefined when it is none of the known ones. */
export function contentKind(head: Uint8Array): ForeignContent | undefined {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (bytes.subarray(0, 8).toString('latin1') === 'XBSTCK01') return 'xbstream';
  if (bytes.length >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  if (bytes.length > 0 && !bytes.includes(0) && SQL_START.test(bytes.toString('utf8'))) return 'sql';
  return undefined;
}

/** Which contents each --method restores. */
export const METHOD_CONTENTS = { mysqldump: ['sql'], mariabackup: ['xbstream', 'tar'] } as const satisfies Record<string, readonly ForeignContent[]>;
export type ForeignMethod = keyof typeof METHOD_CONTENTS;

const IDENT = '`((?:[^`\\n]|``)+)`';
const CREATE_DATABASE = new RegExp(`^CREATE (?:DATABASE|SCHEMA) (?:/\\*!\\d+ IF NOT EXISTS\\*/ |IF NOT EXISTS )?${IDENT}`);
const USE = new RegExp(`^USE ${IDENT}`);
/** mysqldump's and mariadb-dump's last line (unless --skip-comments). */
const TRAILER = /-- Dump completed(?: on [^\n]*)?\n?\s*$/;

/**
 * Reads a SQL dump as it streams by, without keeping it: the schemas it creates or switches to
 * (`CREATE DATABASE`, `USE`, as mysqldump writes them with --databases or --all-databases), and
 * whether it ends with the dump tool's closing line. Lines longer than a statement header (the
 * extended INSERTs) are skipped, never buffered.
 */
export class DumpScanner extends Writable {
  readonly schemas = new Set<string>();
  bytes = 0;
  #line = '';
  #skipping = false;
  #lineStart = true;
  #tail = Buffer.alloc(0);

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    let start = 0;
    while (start < chunk.length) {
      if (this.#lineStart) {
        // Only CREATE DATABASE and USE lines are read: any other (a row of an INSERT, which
        // mariadb-dump writes one per line, a comment) is skipped by its first byte, never decoded.
        this.#lineStart = false;
        const first = chunk[start];
        this.#skipping = first !== 0x43 /* C */ && first !== 0x55 /* U */;
      }
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      if (!this.#skipping) {
        // A header line is short: anything past 4 KiB is data, skipped to its end.
        const room = 4096 - this.#line.length;
        if (end - start > room) this.#skipping = true;
        else this.#line += chunk.toString('utf8', start, end);
      }
      if (newline < 0) break;
      if (!this.#skipping) this.#take(this.#line);
      this.#line = '';
      this.#skipping = false;
      this.#lineStart = true;
      start = newline + 1;
    }
    this.#tail = Buffer.concat([this.#tail, chunk.subarray(Math.max(0, chunk.length - 256))]).subarray(-256);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#skipping) this.#take(this.#line);
    callback();
  }

  #take(line: string): void {
    const name = (CREATE_DATABASE.exec(line) ?? USE.exec(line))?.[1];
    if (name !== undefined) this.schemas.add(name.replace(/``/g, '`'));
  }

  /** Whether the dump ends as mysqldump/mariadb-dump end theirs: a cut one does not. */
  get complete(): boolean {
    return TRAILER.test(this.#tail.toString('utf8'));
  }
}
