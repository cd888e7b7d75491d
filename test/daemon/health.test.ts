import { describe, expect, it } from 'vitest';
import { captureHealth, type HealthInput } from '../../src/daemon/binlog-health.ts';
import { brief } from '../../src/daemon/brief.ts';

const now = new Date('2026-11-21T10:00:00Z');
const base: HealthInput = { connected: true, everConnected: true, disconnectedSince: null, storageError: null, failure: null };
const ago = (ms: number) => new Date(now.getTime() - ms);

describe('capture health', () => {
  it('healthy while connected and uploads succeed', () => {
    expect(captureHealth(base, now)).toEqual({ health: 'healthy', reason: null });
  });

  it('degraded as soon as uploads fail, connected or not', () => {
    const input = { ...base, storageError: { message: 'connect ECONNREFUSED 127.0.0.1:9000', since: ago(5000) } };
    expect(captureHealth(input, now)).toEqual({ health: 'degraded', reason: 'storage writes failing since 2026-11-21T09:59:55.000Z: connect ECONNREFUSED 127.0.0.1:9000' });
  });

  it('reconnecting for a minute, then degraded by the clock alone', () => {
    const down = { ...base, connected: false, disconnectedSince: ago(59_999) };
    expect(captureHealth(down, now).health).toBe('reconnecting');
    expect(captureHealth({ ...down, disconnectedSince: ago(60_000) }, now)).toEqual({ health: 'degraded', reason: 'not connected to the server since 2026-11-21T09:59:00.000Z' });
    expect(captureHealth({ ...down, everConnected: false }, now).health).toBe('starting');
  });

  it('failed wins over everything until cleared, also while a restarted capture is connected', () => {
    const failure = { message: 'binlog capture of shop: the spool is over its bound', at: ago(1000) };
    expect(captureHealth({ ...base, failure }, now)).toEqual({ health: 'failed', reason: failure.message });
    expect(captureHealth({ ...base, failure, storageError: { message: 'x', since: ago(1) } }, now).health).toBe('failed');
  });
});

describe('brief messages', () => {
  it('one line of at most 300 characters, marked when cut', () => {
    expect(brief('connect to prod: refused')).toBe('connect to prod: refused');
    expect(brief('\n  first line  \nsecond')).toBe('first line…');
    const long = brief(`${'x'.repeat(70_000)}\nmore`);
    expect(long).toHaveLength(300);
    expect(long.endsWith('…')).toBe(true);
    expect(brief('')).toBe('');
  });
});
