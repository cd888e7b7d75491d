// Waiting on a daemon's binlog capture through its /status: connected to the source, and every
// event written up to a moment archived. Shared by the tests that archive binlog with the real
// daemon and then restore or verify from the archive (pitr, encryption, passphrase, verify-replay).
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';

export interface CaptureStatus {
  connected: boolean;
  pendingBytes: number;
  lastEventAt: string | null;
}

/** The capture state of `database` in the daemon listening on `port`; undefined while it does not answer. */
export async function captureStatus(port: number, database: string): Promise<CaptureStatus | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
  const body = (await response?.json().catch(() => undefined)) as { binlog?: Record<string, CaptureStatus> } | undefined;
  return body?.binlog?.[database];
}

/** Resolves once the capture is connected; throws with `log()` (the daemon's output) after 30 s. */
export async function captureConnected(port: number, database: string, log: () => string): Promise<void> {
  for (let i = 0; !(await captureStatus(port, database))?.connected; i++) {
    if (i > 300) throw new Error(`the binlog capture of ${database} did not connect:\n${log()}`);
    await sleep(100);
  }
}

/**
 * Resolves once the capture has archived everything written up to `wroteAt` (ms; default now):
 * connected, nothing pending, and its last event in that second or later. Throws after 30 s.
 */
export async function captureArchived(port: number, database: string, log: () => string, wroteAt = Date.now()): Promise<void> {
  for (let i = 0; ; i++) {
    const status = await captureStatus(port, database);
    if (status?.connected && status.pendingBytes === 0 && status.lastEventAt && Date.parse(status.lastEventAt) >= Math.floor(wroteAt / 1000) * 1000) return;
    if (i > 300) throw new Error(`the capture of ${database} did not archive the writes: ${JSON.stringify(status)}\n${log()}`);
    await sleep(100);
  }
}

/**
 * The point-in-time scenario of the encrypted-archive tests: `updates` row changes of
 * `schema.customers` and a `before-T` marker (as the agent user over TCP), the checksums then;
 * at T, the next whole second, the `after-T` writes; then waits until the capture of the daemon on
 * `daemonPort` has archived them. Returns T and the checksums a restore to T must give.
 */
export async function writeAroundT(options: {
  source: { port: number; password: string; sql: (statement: string) => Promise<string> };
  schema: string;
  updates: number;
  checksums: () => Promise<string>;
  daemonPort: number;
  log: () => string;
}): Promise<{ T: Date; expected: string }> {
  const { schema } = options;
  const db = await mysql.createConnection({ host: '127.0.0.1', port: options.source.port, user: 'agent', password: options.source.password });
  try {
    for (let i = 0; i < options.updates; i++) await db.query(`UPDATE ${schema}.customers SET note = 'replayed ${i}' WHERE id = ${i + 1}`);
    await db.query(`INSERT INTO ${schema}.markers VALUES ('before-T')`);
  } finally {
    await db.end();
  }
  const expected = await options.checksums();
  const next = Math.floor(Date.now() / 1000) * 1000 + 1000;
  await sleep(next - Date.now() + 1100);
  await options.source.sql(`INSERT INTO ${schema}.markers VALUES ('after-T'); UPDATE ${schema}.customers SET note = 'after T'`);
  await captureArchived(options.daemonPort, 'source', options.log);
  return { T: new Date(next), expected };
}
