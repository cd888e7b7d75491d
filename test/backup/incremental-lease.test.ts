// An incremental against prune, with the real mariadb-backup and the harness MariaDB into a real
// local directory: it names its parent in its lease before it checks the parent is still there,
// and when prune removed that parent in between, it takes a full backup instead of building on a
// base that is gone.
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/run.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { manifestKey } from '../../src/catalog/keys.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/normalize.ts';
import { parseLease, type LeaseRecord } from '../../src/lease/lease.ts';
import type { ObjectInfo } from '../../src/storage/driver.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { sourceConnectionYaml, sourceEnv, testDir, writeConfig } from '../helpers.ts';

let config: AgentConfig;
beforeAll(async () => {
  const path = await writeConfig(await testDir('inc-lease'), ['storage: { type: local, path: /unused }', 'databases:', '  - name: source', sourceConnectionYaml(), ''].join('\n'));
  config = loadConfig(path, { ...process.env, ...sourceEnv() });
});

/**
 * Double around a real LocalDriver: records every lease write, and plays prune removing `victim`
 * (manifest, then data) at the moment the incremental checks its parent's manifest again.
 */
class PruneRemovesParent extends ForwardingDriver {
  victim: { id: string; data: string } | undefined;
  readonly leaseWrites: LeaseRecord[] = [];

  override async stat(key: string): Promise<ObjectInfo | undefined> {
    if (this.victim && key === manifestKey('source', this.victim.id)) {
      await this.inner.delete(key);
      await this.inner.delete(this.victim.data);
      this.victim = undefined;
    }
    return super.stat(key);
  }

  override async putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    if (key.includes('/leases/')) this.leaseWrites.push(parseLease(data));
    return super.putIfMatch(key, data, version);
  }
}

describe('an incremental whose parent prune removes meanwhile', () => {
  it('named the parent in its lease, found it gone, and took a full backup instead', async () => {
    const real = new LocalDriver(await testDir('inc-lease-store'));
    const storage = new PruneRemovesParent(real);
    const database = config.databases[0];
    if (!database) throw new Error('no database');
    const logger = pino({ level: 'silent' });
    const full = await runBackup({ config, database, storage, trigger: 'manual', logger }, 'full');
    storage.victim = { id: full.id, data: full.objects[0]?.key ?? '' };

    const next = await runBackup({ config, database, storage, trigger: 'manual', logger }, 'incremental');
    expect(storage.leaseWrites.map((l) => l.backup)).toContainEqual({ id: next.id, type: 'incremental', parent: full.id });
    expect(next.type).toBe('full');
    expect(next.physical?.parent).toBeNull();
    expect((await listBackups(real, 'source')).backups.map((b) => b.id)).toEqual([next.id]);
  });
});
