// The schema filter of a PITR replay onto a dump, on synthetic events: which statements and row
// events pass, and the statement-end flag moving to the last kept row event (CRC32 recomputed).
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EventType } from '../../src/binlog/events.ts';
import { isStatementEnd, tableId } from '../../src/restore/row-events.ts';
import { EventFilter, keepStatement } from '../../src/restore/schema-filter.ts';
import { event } from '../binlog/builder.ts';

const keep = new Set(['shop']);
const WRITE_ROWS = 23;

function tableMap(id: number, schema: string, table: string): Buffer {
  const body = Buffer.concat([Buffer.alloc(8), Buffer.from([schema.length]), Buffer.from(`${schema}\0`), Buffer.from([table.length]), Buffer.from(`${table}\0`), Buffer.alloc(4)]);
  body.writeUIntLE(id, 0, 6);
  return withCrc(event({ type: 19, timestamp: 1, body }, 100));
}

function rows(id: number, end: boolean): Buffer {
  const body = Buffer.alloc(20, 0x33);
  body.writeUIntLE(id, 0, 6);
  body.writeUInt16LE(end ? 1 : 0, 6);
  return withCrc(event({ type: WRITE_ROWS, timestamp: 1, body }, 200));
}

function queryEvent(schema: string, text: string): Buffer {
  const post = Buffer.alloc(13);
  post.writeUInt8(schema.length, 8);
  post.writeUInt16LE(0, 11);
  return withCrc(event({ type: EventType.QUERY, timestamp: 1, body: Buffer.concat([post, Buffer.from(`${schema}\0${text}`)]) }, 300));
}

function withCrc(bytes: Buffer): Buffer {
  bytes.writeUInt32LE(crc32(bytes.subarray(0, bytes.length - 4)), bytes.length - 4);
  return bytes;
}

const run = (filter: EventFilter, events: [number, Buffer][]) => events.flatMap(([type, bytes]) => filter.accept(type, bytes, true));

describe('keepStatement', () => {
  it.each([
    ['shop', 'CREATE TABLE t (id INT)', true],
    ['', 'CREATE TABLE shop.t (id INT)', true],
    ['', 'ALTER TABLE `shop`.`t` ADD c INT', true],
    ['other', 'CREATE TABLE t (id INT)', false],
    ['', 'CREATE TABLE other.t (id INT)', false],
    ['shop', 'BEGIN', true],
    ['other', 'COMMIT', true],
    ['shop', "CREATE USER 'ghost'@'%' IDENTIFIED BY 'x'", false],
    ['shop', 'GRANT SELECT ON *.* TO ghost', false],
    ['shop', 'CREATE TABLE mysql.probe (id INT)', false],
    ['shop', 'CREATE DATABASE other', false],
    ['', 'CREATE DATABASE IF NOT EXISTS `shop`', true],
    ['', 'DROP SCHEMA shop', true],
    ['shopping', 'CREATE TABLE t (id INT)', false],
    ['', 'CREATE TABLE shopping.t (id INT)', false],
  ])('default schema %j, %j → %s', (schema, text, expected) => {
    expect(keepStatement(keep, schema, text)).toBe(expected);
  });

  it('writes to mysql.* are kept when the base holds mysql', () => {
    expect(keepStatement(new Set(['mysql']), 'mysql', "CREATE USER 'a'@'%'")).toBe(true);
  });

  it('a compressed statement (no text) follows its default schema', () => {
    expect(keepStatement(keep, 'shop', undefined)).toBe(true);
    expect(keepStatement(keep, 'other', undefined)).toBe(false);
  });
});

describe('EventFilter', () => {
  it('drops the row events and table maps of other schemas, keeps the rest as they are', () => {
    const shopMap = tableMap(18, 'shop', 't');
    const shopRows = rows(18, true);
    const out = run(new EventFilter(keep), [
      [19, tableMap(22, 'other', 't')],
      [WRITE_ROWS, rows(22, true)],
      [19, shopMap],
      [WRITE_ROWS, shopRows],
    ]);
    expect(out).toEqual([shopMap, shopRows]);
  });

  it("moves the statement-end flag to the last kept row event when the other schema's rows end the statement", () => {
    const shopRows = rows(18, false);
    const out = run(new EventFilter(keep), [
      [19, tableMap(18, 'shop', 'customers')],
      [19, tableMap(22, 'other', 't')],
      [WRITE_ROWS, shopRows],
      [WRITE_ROWS, rows(22, false)],
      [WRITE_ROWS, rows(22, true)],
    ]);
    expect(out.map((b) => b.readUInt8(4))).toEqual([19, WRITE_ROWS]);
    const last = out[1] as Buffer;
    expect(tableId(last)).toBe(18);
    expect(isStatementEnd(last)).toBe(true);
    expect(last.readUInt32LE(last.length - 4)).toBe(crc32(last.subarray(0, last.length - 4)));
    expect(isStatementEnd(shopRows)).toBe(false); // the input is not modified
  });

  it('a statement that touches no kept table leaves nothing, not even a kept table map', () => {
    const out = run(new EventFilter(keep), [
      [19, tableMap(18, 'shop', 'customers')],
      [19, tableMap(22, 'other', 't')],
      [WRITE_ROWS, rows(22, true)],
    ]);
    expect(out).toEqual([]);
  });

  it('filters statements by schema and passes transaction events', () => {
    const begin = queryEvent('other', 'BEGIN');
    const ddl = queryEvent('shop', 'ALTER TABLE t ADD c INT');
    const out = run(new EventFilter(keep), [
      [EventType.QUERY, begin],
      [EventType.QUERY, queryEvent('other', 'CREATE TABLE t (id INT)')],
      [EventType.QUERY, queryEvent('shop', "CREATE USER 'x'@'%'")],
      [EventType.QUERY, ddl],
      [EventType.XID, event({ type: EventType.XID, timestamp: 1 }, 400)],
    ]);
    expect(out.map((b) => b.readUInt8(4))).toEqual([EventType.QUERY, EventType.QUERY, EventType.XID]);
    expect(out[1]).toEqual(ddl);
  });
});
