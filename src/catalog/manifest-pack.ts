import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { StorageNotFoundError } from '../storage/driver.ts';
import { bufferBody } from '../storage/buffer-body.ts';
import { etagOf } from './manifest-cache.ts';
import { MANIFEST_VERSION, validateManifest, type Manifest } from './manifest.ts';

/**
 * The manifest pack: a copy, in the store, of a database's committed manifests in one object,
 *
 *   <database>/catalog/manifests.json.gz   gzip of {format, version, database, writtenAt, manifests: {<key>: {size, etag?, manifest}}}
 *
 * so that a listing on a machine without a warm local cache (a new host, a sidecar without a
 * state volume) reads one object instead of one per backup. Like the local cache it is never
 * trusted for existence: the listing decides which backups exist and the pack only spares the
 * read of a listed manifest whose key, size and ETag (when both carry one) it matches, and whose
 * content it validates again. Any version of the pack, however old, is therefore a correct one: two
 * writers may race and an old one may win, costing only reads. Deleting it is always safe.
 * `zstd`-free on purpose: gzip and JSON open with the stock `gunzip` and `jq`.
 *
 * The daemon, `agent prune` and `agent run-now` (an incremental's listing) refresh it after a listing when it lacks (or holds
 * deleted) manifests enough to matter; `agent list`, `status` and the others only read it.
 */

export const PACK_FORMAT = 'backup-agent/manifest-pack';
export const PACK_VERSION = 1;

/** Manifests a listing must be missing from the pack (or the pack must hold for deleted backups) before a reader fetches it or a writer rewrites it. */
export const PACK_MIN_CHANGES = 32;
/** And as a share of the listed manifests: a large catalog is not rewritten for each new backup. */
export const PACK_REWRITE_SHARE = 0.05;

export function manifestPackKey(database: string): string {
  return `${database}/catalog/manifests.json.gz`;
}

/** Whether the listing should read the pack, and whether it may write it back. */
export type PackMode = 'read' | 'refresh';

interface PackEntry {
  size: number;
  etag?: string | undefined;
  manifest: unknown;
}

interface PackFile {
  format: string;
  version: number;
  database: string;
  writtenAt: string;
  manifests: Record<string, PackEntry>;
}

/** One read of the pack: its entries, whose content is validated only when one is looked up. */
export class ManifestPack {
  readonly #entries: Map<string, PackEntry>;
  /** The keys the pack holds. */
  readonly keys: ReadonlySet<string>;

  constructor(entries: Map<string, PackEntry>) {
    this.#entries = entries;
    this.keys = new Set(entries.keys());
  }

  static empty(): ManifestPack {
    return new ManifestPack(new Map());
  }

  /**
   * The manifest the pack holds for the listed object `info`, validated as a manifest read from the
   * store would be (validateManifest); undefined when the pack has no matching entry or it does not
   * validate (the caller then reads the object itself).
   */
  lookup(info: ObjectInfo): Manifest | undefined {
    const entry = this.#entries.get(info.key);
    if (!entry || entry.size !== info.size) return undefined;
    const etag = etagOf(info);
    if (entry.etag !== undefined && etag !== undefined && entry.etag !== etag) return undefined;
    try {
      return validateManifest(entry.manifest);
    } catch {
      return undefined;
    }
  }
}

/**
 * Reads the pack of `database`: an empty one when there is none, or when it is of another format,
 * version or database (a newer agent's, or a copy from elsewhere). A pack that cannot be read or
 * decoded rejects: the caller reports it and reads the manifests one by one.
 */
export async function readManifestPack(storage: StorageDriver, database: string, signal?: AbortSignal): Promise<ManifestPack> {
  const key = manifestPackKey(database);
  let compressed: Buffer;
  try {
    compressed = await buffer(await storage.get(key, signal ? { signal } : {}));
  } catch (err) {
    if (err instanceof StorageNotFoundError) return ManifestPack.empty();
    throw new Error(`read the manifest pack ${key}: ${messageOf(err)}`, { cause: err });
  }
  let file: Partial<PackFile> | null;
  try {
    file = JSON.parse((await promisify(gunzip)(compressed)).toString('utf8')) as Partial<PackFile> | null;
  } catch (err) {
    throw new Error(`the manifest pack ${key} is damaged: ${messageOf(err)}`, { cause: err });
  }
  if (file?.format !== PACK_FORMAT || file.version !== PACK_VERSION || file.database !== database || typeof file.manifests !== 'object' || file.manifests === null) return ManifestPack.empty();
  const entries = new Map<string, PackEntry>();
  for (const [k, entry] of Object.entries(file.manifests)) {
    if (typeof entry?.size === 'number' && (entry.etag === undefined || typeof entry.etag === 'string')) entries.set(k, entry);
  }
  return new ManifestPack(entries);
}

/** Pure: whether a pack holding `packed` keys is worth rewriting for a listing of `listed` readable manifest keys. */
export function packIsStale(packed: ReadonlySet<string>, listed: ReadonlySet<string>): boolean {
  let changes = 0;
  for (const key of listed) if (!packed.has(key)) changes++;
  for (const key of packed) if (!listed.has(key)) changes++;
  return changes >= Math.max(PACK_MIN_CHANGES, Math.ceil(listed.size * PACK_REWRITE_SHARE));
}

/** Writes the pack of `database` from the manifests a listing read (listed object and manifest each). */
export async function writeManifestPack(storage: StorageDriver, database: string, read: readonly { info: ObjectInfo; manifest: Manifest }[], now: Date = new Date()): Promise<void> {
  const manifests: Record<string, PackEntry> = {};
  for (const { info, manifest } of read) {
    if (manifest.version > MANIFEST_VERSION) continue;
    manifests[info.key] = { size: info.size, etag: etagOf(info), manifest };
  }
  const file: PackFile = { format: PACK_FORMAT, version: PACK_VERSION, database, writtenAt: now.toISOString(), manifests };
  const body = await promisify(gzip)(Buffer.from(JSON.stringify(file)));
  await storage.put(manifestPackKey(database), bufferBody(body), { contentType: 'application/gzip' });
}
