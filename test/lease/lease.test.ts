// Leases (src/lease/lease.ts) on the in-memory store and a real local directory: refusal naming
// the holder, takeover of a stale lease by compare-and-swap, a lost lease detected on refresh,
// and a real race of separate processes on local storage where exactly one wins.
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/errors.ts';
import { keepLease } from '../../src/lease/keeper.ts';
import { acquireLease, holderIsGone, parseLease, THIS_MACHINE } from '../../src/lease/lease.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { FIXTURES, testDir } from '../helpers.ts';

const options = { key: 'shop/leases/binlog.json', purpose: 'binlog capture', subject: 'the binlog archive of shop', ttlMs: 60_000 };

const stale = (owner: string) =>
  Buffer.from(JSON.stringify({ owner, host: 'gone.example', pid: 7, purpose: 'binlog capture', acquiredAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T00:10:00.000Z' }));

describe.each<[string, () => Promise<StorageDriver>]>([
  ['memory', async () => new MemoryDriver()],
  ['local', async () => new LocalDriver(await testDir('lease'))],
])('leases on %s storage', (_name, make) => {
  it('a second holder is refused, with who holds it since when; after release it can take it', async () => {
    const storage = await make();
    const first = await acquireLease(storage, options);
    const err = (await acquireLease(storage, options).catch((e: unknown) => e)) as AgentError;
    expect(err).toBeInstanceOf(AgentError);
    expect(err.kind).toBe('locked');
    expect(err.exitCode).toBe(3);
    expect(err.message).toBe(`the binlog archive of shop is locked: binlog capture by ${first.record.host} (pid ${process.pid}) since ${first.record.acquiredAt}`);
    expect(err.hint).toBe(`wait for it to finish; if that process is gone, the lock expires at ${first.record.expiresAt}`);
    await first.release();
    expect(await storage.stat(options.key)).toBeUndefined();
    await expect(acquireLease(storage, options)).resolves.toBeDefined();
  });

  it('a stale lease is taken over; its old holder then finds it lost and cannot release the new one', async () => {
    const storage = await make();
    const old = await acquireLease(storage, { ...options, now: () => new Date('2026-01-01T00:00:00Z') });
    const taker = await acquireLease(storage, options);
    await expect(old.refresh()).rejects.toThrow(`lost the lease of the binlog archive of shop to binlog capture by ${taker.record.host} (pid ${process.pid}) since ${taker.record.acquiredAt}`);
    await old.release(); // compare-and-delete: the new holder's lease stays
    const current = await storage.getVersioned(options.key);
    expect(parseLease(current?.data ?? Buffer.from('{}')).owner).toBe(taker.record.owner);
  });

  it('a refresh moves the expiry on; a keeper aborts its signal once the lease is lost', async () => {
    const storage = await make();
    let clock = new Date('2026-11-30T10:00:00Z');
    const held = await acquireLease(storage, { ...options, now: () => clock });
    clock = new Date('2026-11-30T10:00:30Z');
    await held.refresh();
    expect(held.record.expiresAt).toBe('2026-11-30T10:01:30.000Z');
    const keeper = keepLease(held, () => undefined, () => clock);
    // Another process removes it as stale (its clock says so) and takes it.
    const current = await storage.getVersioned(options.key);
    await storage.putIfMatch(options.key, stale('thief'), current?.version ?? '');
    await expect(keeper.refreshNow()).rejects.toMatchObject({ kind: 'locked' });
    expect(keeper.signal.aborted).toBe(true);
    expect((keeper.signal.reason as Error).message).toMatch(/^lost the lease of the binlog archive of shop to binlog capture by gone.example \(pid 7\)/);
    await keeper.stop();
    expect(parseLease((await storage.getVersioned(options.key))?.data ?? Buffer.from('{}')).owner).toBe('thief');
  });
});

describe('a real race of processes on local storage', () => {
  const contenders = 6;
  async function race(root: string, key: string): Promise<string[]> {
    const runs = Array.from({ length: contenders }, () => execa(process.execPath, [join(FIXTURES, 'lease-contender.ts'), root, key], { reject: false }));
    // Every process loaded and waiting: then release them all at once.
    await Promise.all(runs.map((run) => new Promise<void>((resolve) => run.stdout?.once('data', () => resolve()))));
    for (const run of runs) run.stdin?.end('go\n');
    return (await Promise.all(runs)).map((r) => String(r.stdout).replace('ready\n', ''));
  }

  it('for a missing lease, exactly one process wins', async () => {
    const root = await testDir('lease-race');
    const results = await race(root, 'shop/leases/binlog.json');
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r === 'locked')).toHaveLength(contenders - 1);
  });

  it('for a stale lease, exactly one process takes it over', async () => {
    const root = await testDir('lease-race-stale');
    const storage = new LocalDriver(root);
    await storage.putIfAbsent('shop/leases/binlog.json', stale('dead'));
    const results = await race(root, 'shop/leases/binlog.json');
    expect(results.filter((r) => r === 'won')).toHaveLength(1);
    expect(results.filter((r) => r === 'locked')).toHaveLength(contenders - 1);
  });
});

describe('a holder killed on this machine', () => {
  const record = (pid: number, machine: string | undefined) =>
    Buffer.from(JSON.stringify({ owner: `h:${pid}:x`, host: 'h', pid, purpose: 'binlog capture', acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString(), ...(machine ? { machine } : {}) }));

  it('its live lease is taken over at once when its pid is gone; never for another machine or a live pid', async () => {
    expect(THIS_MACHINE).toMatch(/\/pid:\[\d+\]$/);
    const dead = await execa(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(dead.stdout);
    const storage = new MemoryDriver();

    await storage.putIfAbsent(options.key, record(deadPid, 'other-host/boot/pid:[1]'));
    await expect(acquireLease(storage, options)).rejects.toMatchObject({ kind: 'locked' });
    await storage.delete(options.key);

    await storage.putIfAbsent(options.key, record(1, THIS_MACHINE)); // pid 1 is alive
    await expect(acquireLease(storage, options)).rejects.toMatchObject({ kind: 'locked' });
    await storage.delete(options.key);

    await storage.putIfAbsent(options.key, record(deadPid, THIS_MACHINE));
    const taken = await acquireLease(storage, options);
    expect(taken.record.pid).toBe(process.pid);
    expect(holderIsGone(parseLease(record(deadPid, THIS_MACHINE)))).toBe(true);
  });
});

describe('a lease this process left behind', () => {
  it('is taken again once its holder here released it, even when the store kept the object; never while held', async () => {
    const memory = new MemoryDriver();
    /** A named double: the store is down for deletes, so a release leaves the lease object behind. */
    class DeletesFail extends ForwardingDriver {
      override deleteIfMatch(): Promise<boolean> {
        return Promise.reject(new Error('store down'));
      }
    }
    const storage = new DeletesFail(memory);
    const first = await acquireLease(storage, options);
    await expect(acquireLease(storage, options)).rejects.toMatchObject({ kind: 'locked' });
    await expect(first.release()).rejects.toThrow(/store down/);
    expect(await memory.stat(options.key)).toBeDefined();
    const again = await acquireLease(storage, options);
    expect(again.record.owner).not.toBe(first.record.owner);
  });
});
