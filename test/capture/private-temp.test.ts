import { describe, expect, it } from 'vitest';
import { ownerGone } from '../../src/capture/private-temp.ts';

describe('ownerGone: which temporary directories the sweep removes', () => {
  const alive = (pid: number) => pid === 42;
  it('a directory of a pid that names no process', () => {
    expect(ownerGone('backup-agent-binlog-p7-shop-AbC123', 1, alive)).toBe(true);
  });
  it('never one of a running process, one without an owner pid, or someone else\'s', () => {
    expect(ownerGone('backup-agent-lsn-p42-AbC123', 1, alive)).toBe(false);
    expect(ownerGone('backup-agent-demo-AbC123', 1, alive)).toBe(false);
    expect(ownerGone('backup-agent-AbC123', 1, alive)).toBe(false);
    expect(ownerGone('other-p7-AbC123', 1, alive)).toBe(false);
  });
  it('one with this process\'s own pid, at start-up: an earlier process (a container\'s pid 1) made it', () => {
    expect(ownerGone('backup-agent-verify-p1-AbC123', 1, () => true)).toBe(true);
  });
});
