import { AgentError, messageOf } from '../errors.ts';
import type { HeldLease } from './lease.ts';

/**
 * Keeps a held lease alive: refreshes it every third of its TTL, and aborts `signal` when the
 * lease is lost (another holder took it over) or has expired because refreshes kept failing, so
 * the work it guards stops instead of running on unprotected.
 */
export interface LeaseKeeper {
  /** Aborted, with the reason, when the lease is lost. */
  readonly signal: AbortSignal;
  /** Refreshes now (e.g. right before a commit that the lease must cover); rejects when lost. */
  refreshNow(update?: Parameters<HeldLease['refresh']>[0]): Promise<void>;
  /** Stops refreshing and releases the lease. */
  stop(): Promise<void>;
}

export function keepLease(lease: HeldLease, onError: (err: unknown) => void, now: () => Date = () => new Date()): LeaseKeeper {
  const controller = new AbortController();
  let chain: Promise<void> = Promise.resolve();
  const refresh = (update?: Parameters<HeldLease['refresh']>[0]): Promise<void> => {
    // One refresh at a time: each compares against the version the previous one wrote.
    const next = chain.then(async () => {
      if (controller.signal.aborted) throw controller.signal.reason as Error;
      try {
        await lease.refresh(update);
      } catch (err) {
        const expired = Date.parse(lease.record.expiresAt) < now().getTime();
        if ((err instanceof AgentError && err.kind === 'locked') || expired) {
          const reason = err instanceof AgentError && err.kind === 'locked'
            ? err
            : new AgentError('locked', `the lease of ${lease.subject} expired: it could not be refreshed: ${messageOf(err)}`, { cause: err });
          controller.abort(reason);
          throw reason;
        }
        throw err;
      }
    });
    chain = next.catch(() => undefined);
    return next;
  };
  const timer = setInterval(() => {
    refresh().catch((err: unknown) => onError(err));
  }, Math.max(200, Math.floor(lease.ttlMs / 3)));
  return {
    signal: controller.signal,
    refreshNow: refresh,
    async stop() {
      clearInterval(timer);
      await chain;
      await lease.release(); // compare-and-delete: a lease taken over meanwhile is left alone
    },
  };
}
