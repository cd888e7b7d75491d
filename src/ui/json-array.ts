/**
 * Writes `items` to `stream` as the text `JSON.stringify([...items], null, 2)` followed by a
 * newline, a chunk of items at a time: `agent list --json` over 20,000 backups is ~10 MB of text,
 * which as one string (and its intermediate copies) would cost the process hundreds of MB.
 * Waits for the stream to drain between chunks; stops early when the stream is gone (the reader
 * closed the pipe: ui/output.ts reports what matters of that).
 */
export async function writeJsonArray<T>(stream: NodeJS.WritableStream & { destroyed?: boolean }, items: readonly T[], toJson: (item: T) => unknown, chunk = 256): Promise<void> {
  if (items.length === 0) {
    stream.write('[]\n');
    return;
  }
  for (let start = 0; start < items.length; start += chunk) {
    if (stream.destroyed) return;
    // One stringify of the chunk as an array: its elements come out indented as in the whole
    // array's text; only the chunk's own brackets are cut off ("[\n" and "\n]").
    const array = JSON.stringify(items.slice(start, start + chunk).map(toJson), null, 2);
    const text = `${start === 0 ? '[\n' : ',\n'}${array.slice(2, -2)}${start + chunk >= items.length ? '\n]\n' : ''}`;
    if (!stream.write(text)) await drained(stream);
  }
}

function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
