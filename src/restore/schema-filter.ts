import { EventScanner } from '../binlog/events.ts';
import { isQueryEvent, isRowsEvent, isStatementEnd, queryParts, TABLE_MAP, tableId, tableMapSchema, withStatementEnd } from './row-events.ts';

/**
 * A replay onto a dump of some schemas carries only writes to those schemas: whole binlog events
 * of other schemas (and of `mysql.*`, unless the base holds it) are left out before the bytes
 * reach mariadb-binlog. Row events follow their table map's schema; a statement is kept when its
 * default schema is kept or it names a kept schema (`shop.t`), like mariadb-binlog --database but
 * for a set of schemas and for DDL written with qualified names. Events before `from` (the part
 * of the first file mariadb-binlog skips) pass untouched.
 */

const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|XA\s|SAVEPOINT\s|RELEASE\s+SAVEPOINT\s)/i;
const ACCOUNTS = /^\s*(CREATE|DROP|ALTER|RENAME)\s+(USER|ROLE)\b|^\s*(GRANT|REVOKE)\b|^\s*SET\s+(PASSWORD|DEFAULT\s+ROLE)\b|^\s*FLUSH\s+PRIVILEGES\b/i;
const DATABASE_DDL = /^\s*(?:CREATE|DROP|ALTER)\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(`(?:[^`]|``)+`|[^\s;]+)/i;

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Does the statement name `schema` as a qualifier: `schema`.x or schema.x? */
function names(text: string, schema: string): boolean {
  const quoted = `\`${escape(schema.replace(/`/g, '``'))}\``;
  return new RegExp(`(^|[^\\w$\`])(${quoted}|${escape(schema)})\\s*\\.`, 'i').test(text);
}

/** Pure: is a statement (default schema, text) a write to the kept schemas? */
export function keepStatement(keep: ReadonlySet<string>, schema: string, text: string | undefined): boolean {
  if (text === undefined) return keep.has(schema);
  if (TRANSACTION_CONTROL.test(text)) return true;
  if (!keep.has('mysql') && (ACCOUNTS.test(text) || names(text, 'mysql'))) return false;
  const database = DATABASE_DDL.exec(text)?.[1];
  if (database !== undefined) return keep.has(database.startsWith('`') ? database.slice(1, -1).replace(/``/g, '`') : database);
  return keep.has(schema) || [...keep].some((s) => names(text, s));
}

/**
 * Pure event-by-event decision. Kept table maps wait for a kept row event (a statement that
 * touches no kept table leaves nothing behind); the last kept row event waits for its statement's
 * end, so that when the event carrying the statement-end flag is dropped the flag moves to it.
 */
export class EventFilter {
  readonly #keep: ReadonlySet<string>;
  readonly #tables = new Map<number, boolean>();
  #maps: Buffer[] = [];
  #held: Buffer | undefined;

  constructor(keep: ReadonlySet<string>) {
    this.#keep = keep;
  }

  /** The bytes to pass on now for one event of `type` (a whole event, header to checksum). */
  accept(type: number, bytes: Buffer, checksummed: boolean): Buffer[] {
    if (type === TABLE_MAP) {
      const kept = this.#keep.has(tableMapSchema(bytes));
      this.#tables.set(tableId(bytes), kept);
      if (kept) this.#maps.push(Buffer.from(bytes));
      return [];
    }
    if (isRowsEvent(type)) {
      const end = isStatementEnd(bytes);
      if (this.#tables.get(tableId(bytes)) ?? true) {
        const out = [...this.#maps, ...(this.#held ? [this.#held] : [])];
        this.#maps = [];
        this.#held = end ? undefined : Buffer.from(bytes);
        if (end) out.push(bytes);
        return out;
      }
      return end ? this.#closeStatement(checksummed) : [];
    }
    const out = this.#closeStatement(checksummed);
    if (isQueryEvent(type)) {
      const { schema, text } = queryParts(type, bytes, checksummed);
      if (!keepStatement(this.#keep, schema, text)) return out;
    }
    out.push(bytes);
    return out;
  }

  #closeStatement(checksummed: boolean): Buffer[] {
    const out = this.#held ? [withStatementEnd(this.#held, checksummed)] : [];
    this.#held = undefined;
    this.#maps = [];
    return out;
  }
}

/** One binlog file's bytes (from its beginning) in, the kept events out. */
export function schemaFilter(keep: ReadonlySet<string>, from: number): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* (source: AsyncIterable<Buffer>) {
    const scanner = new EventScanner(0);
    const filter = new EventFilter(keep);
    let held: Buffer = Buffer.alloc(0); // file bytes [passed, received)
    let passed = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      const out: Buffer[] = [];
      const start = passed;
      if (start === 0 && scanner.completeEnd === 0 && held.length >= 4) out.push(held.subarray(0, 4)); // the magic
      for (const event of scanner.push(chunk)) {
        const bytes = held.subarray(event.position - start, event.end - start);
        if (event.position < from) out.push(bytes);
        else out.push(...filter.accept(event.type, bytes, scanner.checksumAlg === 1));
      }
      const consumed = scanner.completeEnd - start;
      if (out.length > 0) yield Buffer.concat(out);
      held = held.subarray(consumed);
      passed = scanner.completeEnd;
    }
  };
}
