/**
 * Messages that leave the process in events, /status and webhooks are one short line: a tool's
 * error can carry 64 KiB of stderr, which belongs in the log (where the full text goes), not in a
 * chat message or a JSON status page.
 */
export const BRIEF_MAX = 300;

export function brief(text: string, max = BRIEF_MAX): string {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  const more = line !== text.trim();
  if (line.length <= max && !more) return line;
  const cut = line.length > max - 1 ? line.slice(0, max - 1) : line;
  return `${cut}…`;
}
