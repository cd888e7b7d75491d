import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runLogicalBackup } from '../backup/run-backup.ts';
import { parseConfig } from '../config/load.ts';
import { freePort } from '../sandbox/free-port.ts';
import { startSandbox, type Sandbox } from '../sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../sandbox/sample-data.ts';
import { restoreLogical } from '../restore/logical-restore.ts';
import { createLogger } from '../logger.ts';
import { CommandContext, out } from './context.ts';
import { list } from './list.ts';


const CHECKSUM_TABLES = 'shop.customers, shop.orders, shop.audit';

/**
 * `agent demo`: the main job on an embedded default. Starts a throwaway MariaDB with a sample shop
 * schema, backs it up to a local directory, lists the backup, restores it into a second throwaway
 * server and compares CHECKSUM TABLE. Needs mariadb-server and mariadb-client installed; touches
 * nothing outside its directory.
 */
export async function demo(options: { dir?: string; keep?: boolean }): Promise<void> {
  const dir = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'backup-agent-demo-'));
  const servers: Sandbox[] = [];
  try {
    out(`demo directory: ${dir}`);
    const source = await startSandbox({ dir: join(dir, 'source'), port: await freePort() });
    servers.push(source);
    await source.sql(sampleDataSql('shop', 2000));
    out(`started MariaDB (pid ${source.pid}, socket ${source.socket}) with a sample "shop" schema`);
    const restored = await startSandbox({ dir: join(dir, 'restored'), port: await freePort(), serverId: 2 });
    servers.push(restored);

    const yaml = [
      '# written by `agent demo`',
      'storage:',
      '  type: local',
      `  path: ${join(dir, 'backups')}`,
      'databases:',
      '  - name: shop',
      `    socket: ${source.socket}`,
      '    user: root',
      '  - name: shop-copy',
      `    socket: ${restored.socket}`,
      '    user: root',
      '',
    ].join('\n');
    const configPath = join(dir, 'agent.yaml');
    await writeFile(configPath, yaml);
    const ctx = new CommandContext(parseConfig(yaml, configPath, process.env), createLogger('warn', 2));
    try {
      const [shop, copy] = ctx.config.databases;
      if (!shop || !copy) throw new Error('demo config lost its databases');
      const storage = await ctx.storage(shop);
      const manifest = await runLogicalBackup({ config: ctx.config, database: shop, storage, trigger: 'manual', logger: ctx.logger });
      out(`\n$ agent --config ${configPath} run-now --database shop`);
      out(`backup ${manifest.id}: ${manifest.sizeBytes} bytes (${manifest.rawSizeBytes} bytes of SQL), binlog ${manifest.binlog?.file}:${manifest.binlog?.position} gtid ${manifest.binlog?.gtid}`);
      out(`\n$ agent --config ${configPath} list`);
      await list(ctx, {});
      out(`\n$ agent --config ${configPath} restore --database shop --target shop-copy`);
      await restoreLogical({ config: ctx.config, storage, manifest, target: copy, overwrite: false, skipBinlog: false, decryption: { agePath: undefined, identityFile: undefined }, logger: ctx.logger });
      const before = await source.sql(`CHECKSUM TABLE ${CHECKSUM_TABLES}`);
      const after = await restored.sql(`CHECKSUM TABLE ${CHECKSUM_TABLES}`);
      out(`\nCHECKSUM TABLE on the source:\n${before}\nCHECKSUM TABLE on the restored copy:\n${after}`);
      if (before !== after) throw new Error('the restored tables differ from the source');
      out('\nrestore verified: every table checksum matches');
      if (options.keep) out(`\nkept ${dir}; try: agent --config ${configPath} list`);
    } finally {
      await ctx.close();
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    if (!options.keep && !options.dir) await rm(dir, { recursive: true, force: true });
  }
}
