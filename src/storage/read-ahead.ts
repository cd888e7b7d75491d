/**
 * Maps an async iterable with up to `limit` calls of `fn` in flight, yielding the results in the
 * order of the source: a listing stays in key order while its per-entry reads overlap. A caller
 * that stops early stops the source; the calls already started run to their end unobserved (their
 * rejections are caught, never unhandled).
 */
export async function* readAhead<T, R>(source: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const iterator = source[Symbol.asyncIterator]();
  const window: Promise<R>[] = [];
  let exhausted = false;
  try {
    for (;;) {
      while (!exhausted && window.length < limit) {
        const next = await iterator.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const call = fn(next.value);
        call.catch(() => undefined); // awaited below in order; this only keeps an abandoned one from going unhandled
        window.push(call);
      }
      const head = window.shift();
      if (!head) return;
      yield await head;
    }
  } finally {
    if (!exhausted) await iterator.return?.();
  }
}
