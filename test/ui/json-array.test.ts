// `agent list --json` writes its array a chunk at a time: the text must be exactly the one
// JSON.stringify(array, null, 2) gives, whatever the chunk boundaries.
import { PassThrough } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { writeJsonArray } from '../../src/ui/json-array.ts';

async function written(items: unknown[], chunk: number): Promise<string> {
  const stream = new PassThrough();
  const collected = text(stream);
  await writeJsonArray(stream, items, (item) => item, chunk);
  stream.end();
  return collected;
}

const item = (i: number) => ({ id: `b${i}`, note: 'line\nbreak "quoted"', nested: { list: [i, null], empty: {} }, gone: undefined, parent: null });

describe('writeJsonArray', () => {
  it.each([0, 1, 2, 3, 7, 8, 9, 20])('writes %i items as JSON.stringify(items, null, 2) does, in chunks of 3 and 8', async (n) => {
    const items = Array.from({ length: n }, (_, i) => item(i));
    const expected = `${JSON.stringify(items, null, 2)}\n`;
    expect(await written(items, 3)).toBe(expected);
    expect(await written(items, 8)).toBe(expected);
  });

  it('maps each item through toJson', async () => {
    const stream = new PassThrough();
    const collected = text(stream);
    await writeJsonArray(stream, [1, 2], (n) => ({ n }));
    stream.end();
    expect(JSON.parse(await collected)).toEqual([{ n: 1 }, { n: 2 }]);
  });
});
