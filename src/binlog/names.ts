/**
 * Binlog file names come from the server (SHOW BINARY LOGS, rotate events) and back from storage
 * (segment keys and manifests). They reach `join(spool, name)`, `rm` and the binlog tool's argv,
 * so every one is checked against this strict shape before use: a basename of letters, digits,
 * `_`, `.`, `+` or `-` that starts with a letter, digit or `_` (never `-`: argv; never `.`), no `..`,
 * no `/`, then `.` and the file number — what `log_bin` ever produces (`mysql-bin.000042`).
 */

const BINLOG_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\.\d{1,10}$/;

export function isBinlogName(name: string): boolean {
  return BINLOG_NAME.test(name) && !name.includes('..');
}

/** Why `name` is refused, for error messages: printable, quoted, and short. */
export function describeBadName(name: string): string {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  return `${shown} is not a binlog file name (expected e.g. mysql-bin.000042)`;
}
