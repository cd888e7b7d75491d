import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox } from '../sandbox/mariadb-sandbox.ts';

/**
 * Starts a private throwaway server on a restored datadir (socket only, no grant checks, no binlog;
 * nothing else is touched) and returns `CHECKSUM TABLE` of every user table, as `schema.table<TAB>checksum`.
 */
export async function verifyDatadir(datadir: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'backup-agent-verify-'));
  const server = await startSandbox({ dir, port: 0, existingDatadir: datadir, serverId: 4242, private: true });
  try {
    const tables = (
      await server.sql(
        "SELECT CONCAT('`', table_schema, '`.`', table_name, '`') FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema') ORDER BY table_schema, table_name",
      )
    )
      .split('\n')
      .filter(Boolean);
    if (tables.length === 0) return [];
    return (await server.sql(`CHECKSUM TABLE ${tables.join(', ')} EXTENDED`)).split('\n').filter(Boolean);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
