// The daemon's event bus guards its listeners: one that throws is reported, and neither the job
// that emitted nor the other listeners see it.
import { describe, expect, it } from 'vitest';
import { DaemonEventBus } from '../../src/daemon/events.ts';
import { parseConfig } from '../../src/config/load.ts';

describe('DaemonEventBus', () => {
  it('reports a throwing listener and still calls the others', () => {
    const reported: string[] = [];
    const bus = new DaemonEventBus((event, error) => reported.push(`${event}: ${(error as Error).message}`));
    const seen: string[] = [];
    bus.on('job:skipped', () => {
      throw new Error('metrics broke');
    });
    bus.on('job:skipped', (e) => seen.push(e.database));
    expect(() => bus.emit('job:skipped', { database: 'shop', type: 'dump', trigger: 'periodic', reason: 'overlap' })).not.toThrow();
    expect(seen).toEqual(['shop']);
    expect(reported).toEqual(['job:skipped: metrics broke']);
  });
});

describe('notification settings', () => {
  it('name only configured databases', () => {
    const yaml = `storage: { type: local, path: /tmp/x }
databases:
  - name: shop
notifications:
  webhooks:
    - { url: "https://hooks.example.com/T000/secret", databases: [shop, shpo] }
  heartbeats:
    - { url: "https://hc-ping.example.com/uuid", database: nope }
`;
    expect(() => parseConfig(yaml, 'c', {})).toThrow(/line 6: notifications\.webhooks\[0\]\.databases\[1\]: no database entry named "shpo"/);
    expect(() => parseConfig(yaml, 'c', {})).toThrow(/line 8: notifications\.heartbeats\[0\]\.database: no database entry named "nope"/);
  });
});
