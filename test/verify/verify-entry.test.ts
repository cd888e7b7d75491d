// Which backups a daemon's verify schedule takes (pure): the newest, or every one that has not
// passed at the schedule's depth or deeper, judged from the record keys the listing holds.
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { passedAtLeast } from '../../src/verify/record.ts';
import { chooseForVerify } from '../../src/verify/verify-entry.ts';

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
