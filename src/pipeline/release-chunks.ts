/**
 * Every chunk of a backup stream is a new Buffer (64 KiB from a pipe), and V8 frees a Buffer's
 * memory only when a GC finds it dead. A stream makes few JavaScript objects, so the young
 * generation (1 MiB semi-spaces: the `agent` shebang's --max-semi-space-size=1) fills slowly and
 * scavenges are rare; chunks that wait in a stage's buffer across two scavenges are promoted to
 * the old generation, whose next full GC V8 starts only ~64 MiB of external memory later. Between
 * GCs, tens of MiB of dead chunks stay resident. So the stream asks for a scavenge every few MiB
 * (well under a millisecond on a 1 MiB young generation) and for a full GC, marked concurrently,
 * every few tens of MiB (a few ms on the agent's ~25 MiB heap). Needs --expose-gc (the `agent`
 * shebang and the Docker entrypoint pass it); without it this does nothing.
 */

/** How much of a stream passes between two scavenges, and between two full GCs. */
export const SCAVENGE_EVERY_BYTES = 4 * 1024 * 1024;
export const COLLECT_EVERY_BYTES = 64 * 1024 * 1024;

export type Gc = (options: { type: 'minor' } | { type: 'major'; execution: 'async' }) => Promise<void> | undefined;

/**
 * A progress callback (the running byte count of a stream) that asks V8 for a scavenge each time
 * the count crosses a multiple of `minorEvery`, and for a full GC at multiples of `majorEvery`.
 */
export function releaseChunks(minorEvery = SCAVENGE_EVERY_BYTES, majorEvery = COLLECT_EVERY_BYTES, gc = (globalThis as { gc?: Gc }).gc): (bytes: number) => void {
  let minor = minorEvery;
  let major = majorEvery;
  return (bytes) => {
    if (bytes >= major) {
      major = (Math.floor(bytes / majorEvery) + 1) * majorEvery;
      minor = (Math.floor(bytes / minorEvery) + 1) * minorEvery;
      void gc?.({ type: 'major', execution: 'async' })?.catch(() => undefined);
    } else if (bytes >= minor) {
      minor = (Math.floor(bytes / minorEvery) + 1) * minorEvery;
      void gc?.({ type: 'minor' });
    }
  };
}

/**
 * A full GC now, before a backup stream starts: what the preparation left (the catalog read, the
 * store's answers) is garbage that would otherwise stay resident under the stream's buffers and
 * set the process's peak (~5–8 MiB of a physical backup to S3). One GC, ~10 ms.
 */
export function collectBeforeStream(gc = (globalThis as { gc?: (options?: { type: 'major' }) => void }).gc): void {
  gc?.({ type: 'major' });
}
