import { describe, expect, it } from 'vitest';
import { ifRangeHolds, parseRange } from '../../src/api/range.ts';

describe('parseRange: one byte range of an archive (RFC 9110)', () => {
  const size = 1000;
  it('reads a-b, a- and -n, clipping the end to the last byte', () => {
    expect(parseRange('bytes=0-0', size)).toEqual({ kind: 'partial', start: 0, end: 0 });
    expect(parseRange('bytes=100-199', size)).toEqual({ kind: 'partial', start: 100, end: 199 });
    expect(parseRange('bytes=900-5000', size)).toEqual({ kind: 'partial', start: 900, end: 999 });
    expect(parseRange('bytes=990-', size)).toEqual({ kind: 'partial', start: 990, end: 999 });
    expect(parseRange('bytes=-10', size)).toEqual({ kind: 'partial', start: 990, end: 999 });
    expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'partial', start: 0, end: 999 });
    expect(parseRange('Bytes = 5 - 6', size)).toEqual({ kind: 'partial', start: 5, end: 6 });
  });
  it('cannot satisfy a start past the end, an empty suffix, or any range of an empty archive', () => {
    expect(parseRange('bytes=1000-', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=1000-1001', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });
  it('ignores (sends the whole archive for) no header, another unit, malformed specs and several ranges', () => {
    for (const header of [undefined, '', 'items=0-1', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-4', 'bytes=0-1,5-6', 'bytes=1.5-2']) {
      expect(parseRange(header, size), String(header)).toEqual({ kind: 'full' });
    }
  });
});

describe('ifRangeHolds', () => {
  it('holds without If-Range or with the archive ETag; not with another or a date', () => {
    expect(ifRangeHolds(undefined, '"abc"')).toBe(true);
    expect(ifRangeHolds('"abc"', '"abc"')).toBe(true);
    expect(ifRangeHolds('"abd"', '"abc"')).toBe(false);
    expect(ifRangeHolds('Tue, 01 Dec 2026 10:00:00 GMT', '"abc"')).toBe(false);
  });
});
