import { ToolError } from '../capture/tool-process.ts';
import { messageOf } from '../errors.ts';

/**
 * One line that names why the SQL client (or mariadb-binlog) stopped, never the statement it was
 * running: a client's stderr can hold a whole multi-megabyte INSERT or a hex blob, and error
 * messages quote values ("Duplicate entry 'alice@example.com'", "near '...'"). Kept: the client's
 * error code, SQLSTATE, input line and the message with quoted values elided.
 */

const MAX_LINE = 240;

/** Pure: the first `ERROR nnnn (SSSSS)` line of a client's stderr, with values elided. */
export function clientErrorLine(stderr: string): string | undefined {
  const match = /ERROR \d+ \([0-9A-Z]{5}\)[^\n]*/.exec(stderr);
  if (!match) return undefined;
  let line = match[0]
    // "near '...'": the statement text itself; nothing after it is worth the risk.
    .replace(/ (?:to use )?near '[\s\S]*$/, '')
    .replace(/; check the manual that corresponds to your \S+ server version for the right syntax.*$/, '')
    // Values quoted by the server: keep the words around them, not the data.
    .replace(/((?:entry|value|value:|string|string:) )'(?:[^'\\]|\\.|'')*'/g, "$1'…'");
  if (line.length > MAX_LINE) line = `${line.slice(0, MAX_LINE)}…`;
  return line;
}

/** A tool failure as one line: "mariadb exited with code 1: ERROR 2013 (HY000) at line 12: Lost connection …". */
export function describeToolFailure(err: unknown): string {
  if (!(err instanceof ToolError)) return firstLine(messageOf(err));
  const how = err.signal ? `was killed by ${err.signal}` : err.exitCode === undefined ? 'failed to start' : `exited with code ${err.exitCode}`;
  // Without an ERROR line, only a line the tool itself prefixes (never an echoed statement).
  const own = /^(?:mariadb-binlog|mysqlbinlog|mariadb|mysql|ERROR)\b[^\n]*/m.exec(err.stderr)?.[0];
  const line = clientErrorLine(err.stderr) ?? (own ? firstLine(own) : '');
  return `${err.tool} ${how}${line ? `: ${line}` : ''}`;
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
}
