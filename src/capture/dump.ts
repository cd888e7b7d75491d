import type { ToolInfo } from './tools.ts';

/**
 * The mariadb-dump / mysqldump command line. Pure: the same inputs give the same argv, which
 * never holds a secret (credentials are in the defaults file).
 */

export interface DumpArgsInput {
  defaultsFile: string;
  tool: Pick<ToolInfo, 'flavor' | 'version'>;
  schemas: readonly string[];
  /** Ask the tool for the binlog coordinates of its snapshot. */
  binlogCoordinates: boolean;
  extraArgs: readonly string[];
}

function majorMinor(version: string): [number, number, number] {
  const [a, b, c] = version.split(/[.-]/).map((n) => Number.parseInt(n, 10));
  return [a || 0, b || 0, c || 0];
}

export function buildDumpArgs(input: DumpArgsInput): string[] {
  const args = [
    // Must be the first option of every MariaDB/MySQL tool.
    `--defaults-file=${input.defaultsFile}`,
    // One consistent InnoDB snapshot, no global read lock.
    '--single-transaction',
    // Stream rows instead of buffering whole tables in the tool.
    '--quick',
    '--routines',
    '--events',
    '--triggers',
    // Managed and least-privilege accounts lack PROCESS, which tablespace dumps need.
    '--no-tablespaces',
    '--hex-blob',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
  ];
  const [major, minor, patch] = majorMinor(input.tool.version);
  if (input.tool.flavor === 'mysql' && major >= 8) {
    // mysqldump 8 queries column statistics that MariaDB and many managed servers do not have.
    args.push('--column-statistics=0');
  }
  if (input.binlogCoordinates) {
    const sourceData = input.tool.flavor === 'mysql' && (major > 8 || (major === 8 && (minor > 0 || patch >= 26)));
    // =2 writes the coordinates as a comment: restoring the dump does not reconfigure replication.
    args.push(sourceData ? '--source-data=2' : '--master-data=2');
    if (input.tool.flavor === 'mariadb') args.push('--gtid');
  }
  // `--` ends the options: a schema may be named `-dash`, which would otherwise read as options.
  args.push(...input.extraArgs, '--databases', '--', ...input.schemas);
  return args;
}
