import { crc32 } from 'node:zlib';
import { HEADER_SIZE } from '../binlog/events.ts';

/**
 * Reading (and, for one flag, rewriting) the bodies of the binlog events a schema-filtered replay
 * looks into: table maps (which schema a table id means), row events (which table, last of its
 * statement?) and queries (default schema, statement text). Pure; layouts from the MariaDB
 * knowledge base, "Binary Log Events" (v4 format, 6-byte table ids).
 */

export const TABLE_MAP = 19;
const QUERY = 2;
const QUERY_COMPRESSED = 165;
/** WRITE/UPDATE/DELETE_ROWS v1 (23-25), v2 (30-32), and MariaDB's compressed ones (166-171). */
const ROWS = new Set([23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171]);
const STMT_END_F = 0x0001;

export const isRowsEvent = (type: number): boolean => ROWS.has(type);
export const isQueryEvent = (type: number): boolean => type === QUERY || type === QUERY_COMPRESSED;

/** The table id of a table map or row event (6 bytes after the header). */
export function tableId(bytes: Buffer): number {
  return bytes.readUIntLE(HEADER_SIZE, 6);
}

/** Is this row event the last of its statement (the server then closes the statement's tables)? */
export function isStatementEnd(bytes: Buffer): boolean {
  return (bytes.readUInt16LE(HEADER_SIZE + 6) & STMT_END_F) !== 0;
}

/** The schema a table map event names. */
export function tableMapSchema(bytes: Buffer): string {
  const at = HEADER_SIZE + 8;
  const length = bytes.readUInt8(at);
  return bytes.subarray(at + 1, at + 1 + length).toString('utf8');
}

/** A copy of a row event with STMT_END_F set and its CRC32 (when the file has checksums) recomputed. */
export function withStatementEnd(bytes: Buffer, checksummed: boolean): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt16LE(copy.readUInt16LE(HEADER_SIZE + 6) | STMT_END_F, HEADER_SIZE + 6);
  if (checksummed) copy.writeUInt32LE(crc32(copy.subarray(0, copy.length - 4)), copy.length - 4);
  return copy;
}

/**
 * A query event's default schema and statement text (undefined for a compressed one, whose text
 * is not read here).
 */
export function queryParts(type: number, bytes: Buffer, checksummed: boolean): { schema: string; text: string | undefined } {
  const schemaLength = bytes.readUInt8(HEADER_SIZE + 8);
  const statusLength = bytes.readUInt16LE(HEADER_SIZE + 11);
  const schemaAt = HEADER_SIZE + 13 + statusLength;
  const schema = bytes.subarray(schemaAt, schemaAt + schemaLength).toString('utf8');
  const textAt = schemaAt + schemaLength + 1;
  const text = type === QUERY ? bytes.subarray(textAt, bytes.length - (checksummed ? 4 : 0)).toString('utf8') : undefined;
  return { schema, text };
}
