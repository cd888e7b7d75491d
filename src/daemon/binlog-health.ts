/**
 * Pure: how a binlog capture is doing, from what it last reported and the clock. One word for
 * metrics, status and notifications, and the reason in a short line.
 *
 * - failed: the capture stopped with an error (spool over its bound, refused resume, …); it stays
 *   failed until it archives a segment or confirms it is complete again (a restart that merely
 *   reconnects proves nothing).
 * - degraded: segment uploads are failing (the capture keeps the data in its spool), or it has not
 *   been connected to the server for `graceMs`.
 * - reconnecting / starting: not connected, for less than `graceMs`.
 * - healthy: connected, uploads succeeding.
 */

export type CaptureHealth = 'starting' | 'healthy' | 'reconnecting' | 'degraded' | 'failed';

export interface HealthInput {
  connected: boolean;
  everConnected: boolean;
  /** Since when the capture has not been connected; null while connected. */
  disconnectedSince: Date | null;
  storageError: { message: string; since: Date } | null;
  failure: { message: string; at: Date } | null;
}

/** Not connected for this long is degraded: a server restart takes seconds, not a minute. */
export const DISCONNECTED_GRACE_MS = 60_000;

export function captureHealth(input: HealthInput, now: Date, graceMs = DISCONNECTED_GRACE_MS): { health: CaptureHealth; reason: string | null } {
  if (input.failure) return { health: 'failed', reason: input.failure.message };
  if (input.storageError) return { health: 'degraded', reason: `storage writes failing since ${input.storageError.since.toISOString()}: ${input.storageError.message}` };
  if (!input.connected) {
    const since = input.disconnectedSince;
    if (since && now.getTime() - since.getTime() >= graceMs) return { health: 'degraded', reason: `not connected to the server since ${since.toISOString()}` };
    return { health: input.everConnected ? 'reconnecting' : 'starting', reason: null };
  }
  return { health: 'healthy', reason: null };
}

/** The states a person is told about when entered, and told again about when left for healthy. */
export function isAlarming(health: CaptureHealth): boolean {
  return health === 'degraded' || health === 'failed';
}
