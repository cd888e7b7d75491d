import { describe, expect, it } from 'vitest';
import { collectBeforeStream, releaseChunks } from '../../src/pipeline/release-chunks.ts';

const MiB = 1024 * 1024;

describe('releaseChunks', () => {
  it('asks for a scavenge at each multiple of the minor step and a full GC at each multiple of the major step', () => {
    const calls: string[] = [];
    const gc = (options: { type: string }) => {
      calls.push(options.type);
      return undefined;
    };
    const progress = releaseChunks(4 * MiB, 16 * MiB, gc);
    for (let bytes = 64 * 1024; bytes <= 33 * MiB; bytes += 64 * 1024) progress(bytes);
    // 4, 8, 12 minor; 16 major; 20, 24, 28 minor; 32 major.
    expect(calls).toEqual(['minor', 'minor', 'minor', 'major', 'minor', 'minor', 'minor', 'major']);
  });

  it('asks once for a large jump across several steps', () => {
    const calls: string[] = [];
    const progress = releaseChunks(4 * MiB, 64 * MiB, (o) => void calls.push(o.type));
    progress(10 * MiB);
    progress(11 * MiB);
    progress(12 * MiB);
    expect(calls).toEqual(['minor', 'minor']);
  });

  it('does nothing without --expose-gc', () => {
    const progress = releaseChunks(1, 2, undefined);
    expect(() => progress(10)).not.toThrow();
  });
});

describe('collectBeforeStream', () => {
  it('asks for one full GC', () => {
    const calls: unknown[] = [];
    collectBeforeStream((options) => void calls.push(options));
    expect(calls).toEqual([{ type: 'major' }]);
  });
});
