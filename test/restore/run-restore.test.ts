// The restore engine called directly, as the daemon or an API would call it (no CLI, no flags
// parsed): its refusals come before any data is fetched, and the listener hears only what happened.
// Backups are written into a memory store the way the agent writes them; the successful restores
// run against real servers in test/integration (pitr, physical, backup-restore).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { commitManifest } from '../../src/catalog/catalog.ts';
import { manifestKey } from '../../src/catalog/keys.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { configSchema } from '../../src/config/schema.ts';
import { AgentError } from '../../src/errors.ts';
import { parseTarget } from '../../src/restore/pitr.ts';
import { runRestore, type RestoreDestination, type RestoreEnv } from '../../src/restore/run-restore.ts';
import { bufferBody } from '../../src/storage/buffer-body.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { storeBackup } from '../retention/stored-backups.ts';

const { config } = normalizeConfig(configSchema.parse({ storage: { type: 'local', path: '/nowhere' }, databases: [{ name: 'shop', user: 'agent' }] }));
const shop = config.databases[0];
if (!shop) throw new Error('the test config names one database');

const intoServer: RestoreDestination = { kind: 'server', target: shop, overwrite: false, skipBinlog: false };

function environment(storage: CountingDriver): { env: RestoreEnv; heard: string[] } {
  const heard: string[] = [];
  const env: RestoreEnv = {
    config,
    storage,
    logger: pino({ level: 'silent' }),
    on: {
      selected: (base: Manifest) => heard.push(`selected ${base.id}`),
      progress: (bytes, total) => heard.push(`progress ${bytes}/${total}`),
      movedAside: (path) => heard.push(`moved ${path}`),
    },
  };
  return { env, heard };
}

async function failure(promise: Promise<unknown>): Promise<AgentError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
}

describe('runRestore', () => {
  it('refuses a named backup with a point in time before asking the store anything', async () => {
    const storage = new CountingDriver(new MemoryDriver());
    const { env, heard } = environment(storage);
    const err = await failure(runRestore({ source: shop, backup: 'x', point: parseTarget('2026-11-21T10:00:00Z', undefined), destination: intoServer }, env));
    expect(err.kind).toBe('usage');
    expect(err.message).toBe('--backup cannot be combined with --to-time/--to-gtid: the base is chosen for the target');
    expect(storage.requests).toBe(0);
    expect(heard).toEqual([]);
  });

  it('refuses a point in time with no base before it, naming what to do, and restores nothing', async () => {
    const memory = new MemoryDriver();
    // Backups without binlog coordinates cannot start a replay.
    await storeBackup(memory, '2026-11-20T01:00:00Z');
    await storeBackup(memory, '2026-11-20T02:00:00Z', { type: 'full' });
    const storage = new CountingDriver(memory);
    const { env, heard } = environment(storage);
    const point = parseTarget('2026-11-21T10:00:00Z', undefined);
    const toServer = await failure(runRestore({ source: shop, point, destination: intoServer }, env));
    expect(toServer.kind).toBe('refused');
    expect(toServer.message).toBe('point-in-time restore of shop to 2026-11-21T10:00:00.000Z: no dump with binlog coordinates was taken before it');
    expect(toServer.hint).toBe('take a dump while binlog capture runs');
    const toDatadir = await failure(runRestore({ source: shop, point, destination: { kind: 'datadir', path: '/nowhere/datadir', replace: false, verify: false } }, env));
    expect(toDatadir.message).toContain('no physical backup with binlog coordinates');
    expect(heard).toEqual([]);
    // Only reads: a refused restore never writes to or deletes from the store.
    expect([...storage.calls.keys()].filter((method) => !['list', 'get', 'getVersioned', 'stat'].includes(method))).toEqual([]);
  });

  it('refuses a point in time while an unreadable manifest may be a newer base, naming it', async () => {
    const memory = new MemoryDriver();
    const base = await storeBackup(memory, '2026-11-20T01:00:00Z');
    await commitManifest(memory, { ...base, binlog: { file: 'mysql-bin.000001', position: 4, gtid: null } });
    const hidden = await storeBackup(memory, '2026-11-21T01:00:00Z');
    await memory.put(manifestKey('shop', hidden.id), bufferBody('{"format": "backup-agent/manif'));
    const { env, heard } = environment(new CountingDriver(memory));
    const err = await failure(runRestore({ source: shop, point: parseTarget('2026-11-21T10:00:00Z', undefined), destination: intoServer }, env));
    expect(err.kind).toBe('integrity');
    expect(err.message).toMatch(
      new RegExp(`^point-in-time restore of shop to 2026-11-21T10:00:00\\.000Z: manifest shop/backups/${hidden.id}/manifest\\.json cannot be read \\(manifest is not JSON: .+\\); it may be the base this restore needs$`),
    );
    expect(heard).toEqual([]);
    // A target before the unreadable backup started: it cannot be the base, the search goes on.
    const before = await failure(runRestore({ source: shop, point: parseTarget('2026-11-20T10:00:00Z', undefined), destination: intoServer }, env));
    expect(before.message).not.toContain('cannot be read');
  });

  it('an incremental whose parent manifest cannot be read says so (not "not in the catalog")', async () => {
    const memory = new MemoryDriver();
    const full = await storeBackup(memory, '2026-11-20T02:00:00Z', { type: 'full' });
    const inc = await storeBackup(memory, '2026-11-21T02:00:00Z', { type: 'incremental', parent: full });
    await memory.put(manifestKey('shop', full.id), bufferBody('[]'));
    const { env } = environment(new CountingDriver(memory));
    const err = await failure(runRestore({ source: shop, backup: inc.id, destination: { kind: 'datadir', path: '/dev/null/datadir', replace: false, verify: false } }, env));
    expect(err.message).toBe(
      `backup ${inc.id} needs ${full.id}, whose manifest shop/backups/${full.id}/manifest.json cannot be read (manifest is invalid at (top level): Invalid input: expected object, received array): the chain of ${inc.id} cannot be restored`,
    );
  });

  it('refuses a physical backup named for a server, after announcing nothing and fetching no data', async () => {
    const memory = new MemoryDriver();
    const full = await storeBackup(memory, '2026-11-20T02:00:00Z', { type: 'full' });
    const storage = new CountingDriver(memory);
    const { env, heard } = environment(storage);
    const err = await failure(runRestore({ source: shop, backup: full.id, destination: intoServer }, env));
    expect(err.kind).toBe('usage');
    expect(err.message).toBe(`backup ${full.id} is a physical (full) backup`);
    expect(err.hint).toBe('restore it into a datadir with --datadir DIR');
    expect(heard).toEqual([]);
    // The manifest was read; the data object was not.
    expect(storage.objectReads).toBe(1);
  });

  it('announces the backup it chose when none was named', async () => {
    const memory = new MemoryDriver();
    await storeBackup(memory, '2026-11-19T02:00:00Z', { type: 'full' });
    const newest = await storeBackup(memory, '2026-11-20T02:00:00Z', { type: 'full' });
    const { env, heard } = environment(new CountingDriver(memory));
    // Into a server the newest dump is wanted, and there is none: refused after the search.
    await failure(runRestore({ source: shop, destination: intoServer }, env));
    expect(heard).toEqual([]);
    // Into a datadir the newest full is chosen and announced before anything is restored; the
    // restore then stops at once: a datadir under /dev/null cannot be created.
    const err = await failure(runRestore({ source: shop, destination: { kind: 'datadir', path: '/dev/null/datadir', replace: false, verify: false } }, env));
    expect(err.message).toContain('/dev/null/datadir');
    expect(heard).toEqual([`selected ${newest.id}`]);
  });
});
