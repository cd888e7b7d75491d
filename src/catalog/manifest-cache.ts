import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ObjectInfo } from '../storage/driver.ts';
import { MANIFEST_VERSION, type Manifest } from './manifest.ts';

/**
 * A local cache of committed manifests, one file per storage location and database. Manifests
 * are immutable once committed, so an entry is reused while the listing shows an object of the
 * same key and size (and ETag, when both the entry and the listing carry one). The cache is never
 * trusted for existence: the listing decides which backups exist, the cache only spares the read
 * of their content. Deleting it at any time is safe: a missing or corrupt file is an empty cache,
 * and every manifest not in it is fetched again.
 */

const CACHE_FORMAT = 'backup-agent/manifest-cache';
const CACHE_VERSION = 1;

interface Entry {
  size: number;
  etag?: string | undefined;
  manifest: Manifest;
}

/**
 * The file: a header line (format, version, location, database, SHA-256 of the rest), then the
 * entries as one JSON object. The checksum, checked on open, stands for validating each of tens of
 * thousands of manifests again: a file that does not match it is an empty cache.
 */
interface Header {
  format: string;
  version: number;
  location: string;
  database: string;
  sha256: string;
}

/** The ETag of a listed object when the driver reports one (the storage contract may add it). */
export function etagOf(info: ObjectInfo): string | undefined {
  const etag = (info as { etag?: unknown }).etag;
  return typeof etag === 'string' ? etag : undefined;
}

/**
 * Where caches go: under systemd's StateDirectory (the daemon's unit sets it), else under the
 * user's cache directory ($XDG_CACHE_HOME or ~/.cache); undefined when neither is known.
 */
export function catalogCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const state = env['STATE_DIRECTORY']?.split(':')[0];
  if (state) return join(state, 'catalog-cache');
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg) return join(xdg, 'backup-agent', 'catalog');
  const home = env['HOME'] ?? homedir();
  return home ? join(home, '.cache', 'backup-agent', 'catalog') : undefined;
}

export class ManifestCache {
  /** The cache file; undefined keeps the cache in memory only. */
  readonly file: string | undefined;
  /** Why the cache file could not be read (it then starts empty), for the caller to report. */
  readonly openError: unknown;
  readonly #entries: Map<string, Entry>;
  #dirty = false;

  private constructor(file: string | undefined, entries: Map<string, Entry>, openError?: unknown) {
    this.file = file;
    this.#entries = entries;
    this.openError = openError;
  }

  /** A cache kept in memory only (tests, or no cache directory). */
  static memory(): ManifestCache {
    return new ManifestCache(undefined, new Map());
  }

  /** Opens the cache of `database` in `location` under `dir`: empty when the file is missing or unreadable. */
  static async open(dir: string, location: string, database: string): Promise<ManifestCache> {
    const name = createHash('sha256').update(`${location}\0${database}`).digest('hex').slice(0, 24);
    const file = join(dir, `${name}.json`);
    try {
      return new ManifestCache(file, await readEntries(file, location, database));
    } catch (err) {
      return new ManifestCache(file, new Map(), err);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached manifest of the listed object `info`, if the entry matches it (key, size, and ETag when both have one). */
  lookup(info: ObjectInfo): Manifest | undefined {
    const entry = this.#entries.get(info.key);
    if (!entry || entry.size !== info.size) return undefined;
    const etag = etagOf(info);
    if (entry.etag !== undefined && etag !== undefined && entry.etag !== etag) return undefined;
    return entry.manifest;
  }

  /** Records the manifest read from the listed object `info`. */
  remember(info: ObjectInfo, manifest: Manifest): void {
    if (manifest.version > MANIFEST_VERSION) return;
    this.#entries.set(info.key, { size: info.size, etag: etagOf(info), manifest });
    this.#dirty = true;
  }

  /** Forgets every entry whose key the latest listing did not show (pruned backups). */
  retain(listed: ReadonlySet<string>): void {
    for (const key of this.#entries.keys()) {
      if (!listed.has(key)) {
        this.#entries.delete(key);
        this.#dirty = true;
      }
    }
  }

  /**
   * Writes the cache if it changed: to a temp file, then renamed over the old one, so a reader
   * sees the old file or the new one, never half of one. A cache that cannot be written is
   * reported to the caller, who may ignore it: the next run fetches again.
   */
  async save(location: string, database: string): Promise<void> {
    if (!this.file || !this.#dirty) return;
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    // Hashed as bytes: hashing the string would encode its ~1 KB per manifest a second time.
    const entries = Buffer.from(JSON.stringify(Object.fromEntries(this.#entries)));
    const header: Header = { format: CACHE_FORMAT, version: CACHE_VERSION, location, database, sha256: sha256(entries) };
    try {
      await writeFile(temp, [Buffer.from(`${JSON.stringify(header)}\n`), entries], { mode: 0o600 });
      await rename(temp, this.file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    this.#dirty = false;
  }
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The entries of a cache file; empty when it is missing, of another format or place, or does not match its checksum. */
async function readEntries(file: string, location: string, database: string): Promise<Map<string, Entry>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  // Checked as bytes and decoded once: the file is ~1 KB per manifest, tens of MB for a large catalog.
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) return new Map();
  let header: Partial<Header> | null;
  try {
    header = JSON.parse(bytes.toString('utf8', 0, newline)) as Partial<Header> | null;
  } catch {
    return new Map(); // not ours, or damaged: an empty cache, refilled from the store
  }
  if (header?.format !== CACHE_FORMAT || header.version !== CACHE_VERSION || header.location !== location || header.database !== database) return new Map();
  const entries = bytes.subarray(newline + 1);
  if (header.sha256 !== sha256(entries)) return new Map();
  return new Map(Object.entries(JSON.parse(entries.toString('utf8')) as Record<string, Entry>));
}
