import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import { defaultConfig, loadConfig, resolveConfigPath } from '../config/load.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, usageError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { catalogCacheDir, ManifestCache } from '../catalog/manifest-cache.ts';
import type { ListOptions } from '../catalog/listing.ts';
import type { PackMode } from '../catalog/manifest-pack.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { openStorage, storageIdentity } from '../storage/open.ts';

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
}

/**
 * What the catalog and storage of a database need: its name (the folder in the store) and its
 * storage; and, for a configured entry, its encryption (the identity file restores and downloads
 * decrypt with). A `--from` store has none.
 */
export type StoredDatabase = Pick<DatabaseConfig, 'name' | 'storage'> & Partial<Pick<DatabaseConfig, 'encryption'>>;

/** What every command gets: the loaded config, a logger, and storage drivers shared per target. */
export class CommandContext {
  readonly config: AgentConfig;
  /** The file the configuration was read from. */
  readonly configPath: string;
  readonly logger: Logger;
  /** Aborted by SIGINT/SIGTERM: the running operation stops its tools and cleans up. */
  readonly signal: AbortSignal;
  readonly #drivers = new Map<string, StorageDriver>();
  readonly #caches = new Map<string, Promise<ManifestCache>>();
  readonly #cacheDir: string | undefined;
  /**
   * Whether listings may write the store's manifest pack back (catalog/manifest-pack.ts): the
   * commands that write to the store anyway (daemon, run-now, prune) set 'refresh'; the others only read it.
   */
  packMode: PackMode = 'read';

  constructor(config: AgentConfig, logger: Logger, signal: AbortSignal = new AbortController().signal, configPath = '', env: NodeJS.ProcessEnv = process.env) {
    this.#cacheDir = catalogCacheDir(env);
    this.config = config;
    this.configPath = configPath;
    this.logger = logger;
    this.signal = signal;
  }

  /**
   * With `configOptional` (a command given `--from`), a missing configuration file at the default
   * place is no error: the defaults stand in. One named by --config or AGENT_CONFIG must exist.
   */
  static load(options: GlobalOptions, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env, configOptional = false): CommandContext {
    const path = resolveConfigPath(options.config, env);
    const named = options.config !== undefined || Boolean(env['AGENT_CONFIG']);
    const config = configOptional && !named && !existsSync(path) ? defaultConfig() : loadConfig(path, env);
    return new CommandContext(config, createLogger(options.logLevel ?? 'warn', 2), signal, path, env);
  }

  /** The database entry called `name`; a usage error listing the known ones otherwise. */
  database(name: string, flag = '--database'): DatabaseConfig {
    const found = this.config.databases.find((d) => d.name === name);
    if (!found) {
      throw usageError(
        `${flag} ${name}: no database entry of that name`,
        `the configuration names: ${this.config.databases.map((d) => d.name).join(', ')}`,
      );
    }
    return found;
  }

  /** The named entries, or all of them when none is named. */
  databases(names: readonly string[] | undefined): DatabaseConfig[] {
    if (!names || names.length === 0) return this.config.databases;
    return [...new Set(names)].map((n) => this.database(n));
  }

  /** The entry named by --database, or the only one when the config has exactly one. */
  singleDatabase(name: string | undefined): DatabaseConfig {
    if (name !== undefined) return this.database(name);
    const [only, ...rest] = this.config.databases;
    if (!only || rest.length > 0) {
      throw usageError('--database is required when the configuration names several databases', `one of: ${this.config.databases.map((d) => d.name).join(', ')}`);
    }
    return only;
  }

  async storage(database: StoredDatabase): Promise<StorageDriver> {
    const id = storageIdentity(database.storage);
    let driver = this.#drivers.get(id);
    if (!driver) {
      try {
        const log = this.logger.child({ storage: storageIdentity(database.storage) });
        driver = await openStorage(database.storage, {
          onRetry: ({ method, key, attempt, delayMs, error }) =>
            log.warn({ method, key, attempt, retryInMs: delayMs, error: describeStorageError(error) }, 'storage request failed; retrying'),
        });
      } catch (err) {
        throw new AgentError('config', `open storage of database ${database.name}: ${(err as Error).message}`, { cause: err });
      }
      this.#drivers.set(id, driver);
    }
    return driver;
  }

  /**
   * How catalog listings of `database` read manifests: through the local manifest cache of its
   * storage (one per storage and database, shared by every command of this process).
   */
  async catalog(database: StoredDatabase): Promise<ListOptions> {
    const id = `${storageIdentity(database.storage)}\0${database.name}`;
    let cache = this.#caches.get(id);
    if (!cache) {
      const location = (await this.storage(database)).location;
      cache = this.#cacheDir ? ManifestCache.open(this.#cacheDir, location, database.name) : Promise.resolve(ManifestCache.memory());
      this.#caches.set(id, cache);
      const { openError, file } = await cache;
      if (openError !== undefined) this.logger.warn({ database: database.name, file, error: (openError as Error).message }, 'could not read the manifest cache; reading the manifests from the store');
    }
    const log = this.logger;
    return {
      cache: await cache,
      onCacheError: (err) => log.warn({ database: database.name, error: (err as Error).message }, 'could not write the manifest cache; the next listing reads the manifests again'),
      pack: this.packMode,
      onPackError: (err) => log.warn({ database: database.name, error: describeStorageError(err) }, 'could not use the manifest pack in the store; reading the manifests one by one'),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#drivers.values()].map((d) => d.close()));
    this.logger.flush();
  }
}

/** Writes a line to stdout (command output, as opposed to logs and progress on stderr). */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}
