import type mysql from 'mysql2/promise';
import { AgentError } from '../errors.ts';

/**
 * What a restore needs of its target, checked before anything is written: a refusal after the
 * base is applied leaves the target half-restored. The decision is pure (`targetBlockers`); the
 * shell reads the facts, probing privileges with statements that change nothing.
 */

export interface TargetNeeds {
  /** --no-binlog: the sessions run SET sql_log_bin=0. */
  skipBinlog: boolean;
  /** A binlog replay follows (BINLOG statements, session server_id/pseudo_thread_id). */
  replay: boolean;
  /** Bytes of the largest statement the replay sends (a row-event group as base64), when known. */
  largestStatement?: number;
}

export interface TargetFacts {
  user: string;
  logBin: boolean;
  binlogFormat: string;
  maxAllowedPacket: number;
  /** SET sql_log_bin is allowed (SUPER or BINLOG ADMIN). */
  canSkipBinlog: boolean;
  /** BINLOG statements are allowed (SUPER or BINLOG REPLAY). */
  canReplay: boolean;
}

export interface Blocker {
  problem: string;
  fix: string;
}

/** Pure: why the target cannot take this restore, each with the fix; empty when it can. */
export function targetBlockers(facts: TargetFacts, needs: TargetNeeds): Blocker[] {
  const blockers: Blocker[] = [];
  if (needs.skipBinlog && !facts.canSkipBinlog) {
    blockers.push({
      problem: `--no-binlog needs the BINLOG ADMIN (or SUPER) privilege, which ${facts.user} lacks`,
      fix: `GRANT BINLOG ADMIN ON *.* TO ${facts.user}, or restore without --no-binlog`,
    });
  }
  if (!needs.replay) return blockers;
  if (!facts.canReplay) {
    blockers.push({
      problem: `replaying binlog needs the BINLOG REPLAY (or SUPER) privilege, which ${facts.user} lacks`,
      fix: `GRANT BINLOG REPLAY ON *.* TO ${facts.user}`,
    });
  }
  if (facts.logBin && !needs.skipBinlog && facts.binlogFormat === 'STATEMENT') {
    blockers.push({
      problem: 'the target logs in binlog_format=STATEMENT, which cannot log the replayed row events',
      fix: 'SET GLOBAL binlog_format=MIXED (or ROW) on the target, or restore with --no-binlog',
    });
  }
  // The client sends each row-event group as one BINLOG statement; the server refuses a bigger packet.
  if (needs.largestStatement !== undefined && needs.largestStatement > facts.maxAllowedPacket) {
    blockers.push({
      problem: `the replay sends a ${needs.largestStatement}-byte statement and the target's max_allowed_packet is ${facts.maxAllowedPacket}`,
      fix: `SET GLOBAL max_allowed_packet=${Math.min(2 ** 30, Math.ceil(needs.largestStatement / 1024 ** 2) * 1024 ** 2)} on the target`,
    });
  }
  return blockers;
}

/** Reads the facts over `db` and throws a refusal naming every blocker. */
export async function checkTarget(db: mysql.Connection, targetName: string, needs: TargetNeeds): Promise<void> {
  const facts = await readTargetFacts(db, needs);
  const blockers = targetBlockers(facts, needs);
  if (blockers.length === 0) return;
  throw new AgentError('refused', `restore into ${targetName}: ${blockers.map((b) => b.problem).join('; ')}; nothing was written`, {
    hint: blockers.map((b) => b.fix).join('; '),
  });
}

/** Privileges are probed only where the restore needs them; the others are reported as present. */
export async function readTargetFacts(db: mysql.Connection, needs: TargetNeeds): Promise<TargetFacts> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT CURRENT_USER() AS user, @@log_bin AS log_bin, @@binlog_format AS format, @@max_allowed_packet AS packet',
  );
  const row: Record<string, unknown> = rows[0] ?? {};
  return {
    user: quoteAccount(String(row['user'] ?? '')),
    logBin: Number(row['log_bin']) === 1,
    binlogFormat: String(row['format'] ?? ''),
    maxAllowedPacket: Number(row['packet'] ?? 0),
    canSkipBinlog: needs.skipBinlog ? await allowed(db, 'SET SESSION sql_log_bin = @@session.sql_log_bin') : true,
    // An empty BINLOG statement is refused for privileges (1227) before it is parsed (1149).
    canReplay: needs.replay ? await allowed(db, "BINLOG ''") : true,
  };
}

/**
 * Runs a probe that changes nothing: false only when the server says access denied (1227). Any
 * other answer (the expected syntax error, or a server that words it differently) is no evidence
 * of a missing privilege; the real statement then reports its own error.
 */
async function allowed(db: mysql.Connection, probe: string): Promise<boolean> {
  try {
    await db.query(probe);
    return true;
  } catch (err) {
    return (err as { errno?: number }).errno !== 1227;
  }
}

function quoteAccount(account: string): string {
  const at = account.lastIndexOf('@');
  return at < 0 ? account : `'${account.slice(0, at)}'@'${account.slice(at + 1)}'`;
}
