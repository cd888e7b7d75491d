// Which backups a daemon's verify schedule takes (pure): the newest, or every one that has not
// passed at the schedule's depth or deeper, judged from the record keys the listing holds.
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { newestPassedByDepth, passedAtLeast } from '../../src/verify/record.ts';
import { chooseForVerify, selectForVerify } from '../../src/verify/verify-entry.ts';

const backup = (id: string, status: Manifest['status'] = 'completed') => ({ id, status }) as Manifest;
const record = (id: string, name: string) => `shop/backups/${id}/verify/${name}.json`;

describe('verify schedule selection', () => {
  const newestFirst = [backup('20261203T010000.000Z-abcdef'), backup('20261202T010000.000Z-abcdef'), backup('20261201T010000.000Z-abcdef')];
  const keys = [
    record('20261201T010000.000Z-abcdef', '20261201T050000.000Z-restore-ok'),
    record('20261202T010000.000Z-abcdef', '20261202T050000.000Z-objects-ok'),
    record('20261202T010000.000Z-abcdef', '20261202T060000.000Z-archive-failed'),
    'shop/backups/20261203T010000.000Z-abcdef/dump.sql.zst',
  ];

  it('passedAtLeast counts ok records at the depth or deeper only', () => {
    expect([...passedAtLeast(keys, 'objects')].sort()).toEqual(['20261201T010000.000Z-abcdef', '20261202T010000.000Z-abcdef']);
    expect([...passedAtLeast(keys, 'archive')]).toEqual(['20261201T010000.000Z-abcdef']);
    expect([...passedAtLeast(keys, 'restore')]).toEqual(['20261201T010000.000Z-abcdef']);
  });

  it("newestPassedByDepth (the daemon's start-up seed): the newest ok record per depth, a failed one never", () => {
    const seeded = newestPassedByDepth([...keys, record('20261202T010000.000Z-abcdef', '20261203T050000.000Z-restore-failed'), 'other/backups/20261201T010000.000Z-abcdef/verify/20261204T050000.000Z-archive-ok.json']);
    expect(Object.fromEntries(seeded.get('shop') ?? [])).toEqual({
      restore: { at: '2026-12-01T05:00:00.000Z', backupId: '20261201T010000.000Z-abcdef' },
      objects: { at: '2026-12-02T05:00:00.000Z', backupId: '20261202T010000.000Z-abcdef' },
    });
    expect(Object.fromEntries(seeded.get('other') ?? [])).toEqual({ archive: { at: '2026-12-04T05:00:00.000Z', backupId: '20261201T010000.000Z-abcdef' } });
  });

  it('latest takes the newest completed backup; new every one not passed at the depth, a failed one again', () => {
    expect(chooseForVerify(newestFirst, keys, 'archive', 'latest').map((b) => b.id)).toEqual(['20261203T010000.000Z-abcdef']);
    expect(chooseForVerify(newestFirst, keys, 'archive', 'new').map((b) => b.id)).toEqual(['20261203T010000.000Z-abcdef', '20261202T010000.000Z-abcdef']);
    expect(chooseForVerify(newestFirst, keys, 'objects', 'new').map((b) => b.id)).toEqual(['20261203T010000.000Z-abcdef']);
    expect(chooseForVerify([backup('x', 'failed' as Manifest['status']), ...newestFirst], keys, 'restore', 'latest').map((b) => b.id)).toEqual(['20261203T010000.000Z-abcdef']);
  });
});

describe('verify schedule selection on a host without the key', () => {
  const sealed = { ...backup('20261204T010000.000Z-abcdef'), encryption: { format: 'age', recipients: [{ type: 'X25519', recipient: 'age1…' }] } } as Manifest;
  const keys = [record('20261204T010000.000Z-abcdef', '20261204T050000.000Z-objects-ok')];

  it('an encrypted backup verified to its stored bytes is done for `new` when the key is not here, and taken again when it is', () => {
    expect(chooseForVerify([sealed], keys, 'archive', 'new', false)).toEqual([]);
    expect(chooseForVerify([sealed], keys, 'archive', 'new', true).map((b) => b.id)).toEqual([sealed.id]);
  });
});

describe('selectForVerify (agent verify and the daemon share it)', () => {
  const full = { id: '20261201T010000.000Z-aaaaaa', status: 'completed', type: 'full' } as Manifest;
  const incr = { id: '20261202T010000.000Z-aaaaaa', status: 'completed', type: 'incremental', physical: { parent: full.id } } as Manifest;
  const orphan = { id: '20261203T010000.000Z-aaaaaa', status: 'completed', type: 'incremental', physical: { parent: '20261130T010000.000Z-gone00' } } as Manifest;
  const unreadable = { database: 'shop', id: '20261204T010000.000Z-aaaaaa', key: 'shop/backups/20261204T010000.000Z-aaaaaa/manifest.json', error: 'bad JSON' };

  it('latest: the newest with its chain, and an unreadable manifest that may hide a newer backup is a failure', () => {
    const picked = selectForVerify({ backups: [incr, full], unreadable: [unreadable] }, [], { which: 'latest' });
    expect(picked.chosen.map((c) => c.chain.map((m) => m.id))).toEqual([[full.id, incr.id]]);
    expect(picked.failures).toEqual([{ backupId: unreadable.id, message: `manifest ${unreadable.key} cannot be read (bad JSON): it may be the newest backup` }]);
    expect(selectForVerify({ backups: [incr, full], unreadable: [{ ...unreadable, id: '20261101T010000.000Z-aaaaaa' }] }, [], { which: 'latest' }).failures).toEqual([]);
  });

  it('all and new: every unreadable manifest and every broken chain is a failure, never skipped', () => {
    const all = selectForVerify({ backups: [orphan, incr, full], unreadable: [unreadable] }, [], { which: 'all' });
    expect(all.chosen.map((c) => c.manifest.id)).toEqual([incr.id, full.id]);
    expect(all.failures.map((f) => f.backupId)).toEqual([unreadable.id, orphan.id]);
    expect(all.failures[1]?.message).toContain('which is not in the catalog: the chain of 20261203T010000.000Z-aaaaaa is broken');
    const fresh = selectForVerify({ backups: [incr, full], unreadable: [] }, [record(full.id, '20261201T050000.000Z-archive-ok')], { which: 'new', depth: 'archive', canDecrypt: true });
    expect(fresh.chosen.map((c) => c.manifest.id)).toEqual([incr.id]);
  });
});
