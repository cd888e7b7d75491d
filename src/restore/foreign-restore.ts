import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Transform, Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { withConnection } from '../capture/server.ts';
import { startTool, ToolError } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor, type Algorithm } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { clientErrorLine, describeToolFailure } from './client-error.ts';
import { decryptStage, explainAgeFailure, type Decryption } from './decrypt.ts';
import { ageEnvelope, contentKind, describeStanzas, DumpScanner, HEAD_BYTES, METHOD_CONTENTS, outerCompression, type ForeignContent, type ForeignMethod } from './foreign-format.ts';
import { describeOccupied, readSchemaObjects } from './occupied.ts';
import { claimDatadir, prepareDatadir, unpackStream } from './physical-restore.ts';
import { checkTarget } from './preflight.ts';

/**
 * Restoring an archive that no manifest describes (`agent restore --from URL --key OBJECT
 * --method …`): a dump made by plain mysqldump/mariadb-dump into a database entry, or a
 * mariabackup archive into a datadir, prepared; either may be age-encrypted (by the stock `age`
 * CLI: to X25519 recipients, opened with the identity, or to a passphrase). The format is told by
 * the bytes; an unknown or mismatched one is refused before anything is written. With no SHA-256
 * to check, the whole archive is read once first (it must decrypt and decompress to its end, and
 * a dump's schemas are learnt from it), then restored in a second read.
 */

export interface ForeignRequest {
  key: string;
  method: ForeignMethod;
  /** The identity or passphrase file for an age-encrypted archive. */
  decryption: Decryption;
  destination:
    | { kind: 'server'; target: DatabaseConfig; overwrite: boolean; skipBinlog: boolean; schema?: string | undefined }
    | { kind: 'datadir'; path: string; replace: boolean };
}

export interface ForeignEnv {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  logger: Logger;
  signal?: AbortSignal | undefined;
  onProgress?: ((bytes: number, total: number) => void) | undefined;
  /** Told once the movedAside datadir is out of the way. */
  onMovedAside?: ((path: string) => void) | undefined;
}

export interface ForeignOutcome {
  key: string;
  content: ForeignContent;
  compression: Algorithm;
  /** Whether the archive was age-encrypted (and decrypted on the way). */
  encrypted: boolean;
  bytes: number;
  into: string;
  /** The schemas a dump wrote (logical). */
  schemas: string[];
  movedAside?: string | undefined;
  /** A dump without mysqldump's closing line: it may have been cut (plain SQL has no other check). */
  unterminated: boolean;
}

const CONTENT_NAME: Record<ForeignContent, string> = { sql: 'a SQL dump', xbstream: 'an xbstream (mariabackup --stream)', tar: 'a tar archive' };

export async function restoreForeign(request: ForeignRequest, env: ForeignEnv): Promise<ForeignOutcome> {
  const { storage, signal } = env;
  const { key, method } = request;
  const size = (await storage.stat(key, signal ? { signal } : {}).catch((err: unknown) => {
    throw new AgentError('storage', `stat ${key} in ${storage.location}: ${describeStorageError(err)}`, { cause: err });
  }))?.size;
  if (size === undefined) {
    throw new AgentError('usage', `--key ${key}: no such object in ${storage.location}`, { hint: 'the key is the object path below the --from prefix, as `aws s3 ls` or `gsutil ls` show it' });
  }
  const open = async (): Promise<Readable> => {
    try {
      return await storage.get(key, signal ? { signal } : {});
    } catch (err) {
      throw new AgentError('storage', `read ${key} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
    }
  };

  // What it is, from its first bytes: refused here, before anything is written, when unknown.
  // An age-encrypted archive is decrypted first (the header says with what: an identity or a
  // passphrase), and its plaintext told apart the same way.
  const rawHead = await readHead(await open(), (s) => s);
  const envelope = ageEnvelope(rawHead);
  const what = `--key ${key}`;
  let stages = async (): Promise<Duplex[]> => [];
  let explain = (err: unknown): AgentError | undefined => (err instanceof AgentError ? err : undefined);
  if (envelope) {
    const needs = envelope.stanzas.includes('scrypt') ? 'passphrase' : 'identity';
    if (needs === 'passphrase' && envelope.armored) {
      throw new AgentError('usage', `${what}: it is passphrase-encrypted with age in ASCII armor, which the agent does not decrypt; nothing was written`, { hint: 'decrypt it with the stock CLI first: age -d FILE > PLAIN (it asks for the passphrase)' });
    }
    const encryptedTo = describeStanzas(envelope.stanzas);
    stages = async () => [await decryptStage(needs, `it is encrypted with age to ${encryptedTo}`, request.decryption, what, signal)];
    explain = (err) => explainAgeFailure(err, encryptedTo, request.decryption, what) ?? (err instanceof AgentError ? err : undefined);
  }
  const openPlain = async (onBytes?: (bytes: number) => void): Promise<Readable> => {
    const source = await open();
    return through(onBytes ? withProgress(source, onBytes) : source, await stages());
  };
  const plainHead = envelope
    ? await readHead(await openPlain(), (s) => s).catch((err: unknown) => {
        throw explain(err) ?? new AgentError('storage', `read ${key} from ${storage.location}: ${messageOf(err)}`, { cause: err });
      })
    : rawHead;
  const outer = outerCompression(plainHead);
  if ('unsupported' in outer) throw new AgentError('usage', `--key ${key}: ${outer.unsupported}; nothing was written`);
  const inner = await readHead(await openPlain(), (s) => s.pipe(createDecompressor(outer.compression))).catch((err: unknown) => {
    throw explain(err) ?? new AgentError('integrity', `--key ${key}: not a readable ${outer.compression} stream: ${messageOf(err)}; nothing was written`, { cause: err });
  });
  const content = contentKind(inner);
  if (content === undefined) {
    throw new AgentError('usage', `--key ${key}: not a format the agent restores (it starts with ${Buffer.from(inner.subarray(0, 8)).toString('hex')}${outer.compression === 'none' ? '' : ` after ${outer.compression}`}); nothing was written`, {
      hint: 'the agent restores SQL dumps (.sql, .sql.gz, .sql.zst) with --method mysqldump, and xbstream or tar archives of mariabackup (optionally gzip or zstd) with --method mariabackup',
    });
  }
  if (!(METHOD_CONTENTS[method] as readonly ForeignContent[]).includes(content)) {
    const right = content === 'sql' ? '--method mysqldump --target ENTRY' : '--method mariabackup --datadir DIR';
    throw new AgentError('usage', `--key ${key} is ${CONTENT_NAME[content]}, not what --method ${method} restores; nothing was written`, { hint: `restore it with ${right}` });
  }
  const log = env.logger.child({ key, content, compression: outer.compression, encrypted: envelope !== undefined });
  log.info({ sizeBytes: size }, 'foreign archive recognised');
  const progress = (bytes: number) => env.onProgress?.(bytes, size);
  const base = { key, content, compression: outer.compression, encrypted: envelope !== undefined, bytes: size, unterminated: false };

  if (request.destination.kind === 'datadir') {
    if (content === 'sql') throw new AgentError('usage', '--datadir takes a mariabackup archive; a SQL dump goes into a server (--target ENTRY)');
    const datadir = resolve(request.destination.path);
    // Read to its end first (a cut stream fails here), before an existing datadir is moved.
    const movedAside = await claimDatadir(datadir, request.destination.replace, () => readThrough(openPlain, outer.compression, key, explain));
    if (movedAside) env.onMovedAside?.(movedAside);
    try {
      await mkdir(datadir, { recursive: true, mode: 0o750 });
      const tools = env.config.tools;
      const [command, args] =
        content === 'xbstream'
          ? [(await locateTool(tools.mbstream, ['mbstream'], 'tools.mbstream').catch(() => undefined))?.path ?? 'mbstream', ['-x', '-C', datadir]]
          : ['tar', ['-x', '-C', datadir, '--no-same-owner', '-f', '-']];
      await unpackStream(await openPlain(progress), outer.compression, command, args, `unpack ${key}`, signal, content === 'tar');
      await prepareDatadir(env.config, datadir, [], signal);
    } catch (err) {
      // Leave no half-restored datadir behind as if it were usable; the moved-aside one stays.
      await rm(datadir, { recursive: true, force: true });
      throw err;
    }
    log.info({ datadir }, 'foreign archive restored and prepared');
    return { ...base, into: datadir, schemas: [], movedAside };
  }

  if (content !== 'sql') throw new AgentError('usage', `--key ${key} is ${CONTENT_NAME[content]}: restore it into a datadir with --datadir DIR`);
  const { target, overwrite, skipBinlog, schema } = request.destination;
  // The first read: it must decompress to its end, and tells which schemas the dump writes.
  const scanner = new DumpScanner();
  await pipeline(await openPlain(), createDecompressor(outer.compression), scanner).catch((err: unknown) => {
    throw explain(err) ?? new AgentError('integrity', `--key ${key}: ${messageOf(err)} (a cut or damaged archive); nothing was written`, { cause: err });
  });
  const named = [...scanner.schemas];
  if (named.length > 0 && schema !== undefined) {
    throw new AgentError('usage', `--schema ${schema}: the dump names its schemas itself (${named.join(', ')}); it restores into them`, { hint: 'drop --schema, or restore into another server with --target' });
  }
  if (named.length === 0 && schema === undefined) {
    throw new AgentError('usage', `--key ${key}: the dump names no schema (it was made without --databases): say which schema receives it with --schema NAME`);
  }
  const schemas = schema === undefined ? named : [schema];
  const occupied = await withConnection(target.name, target.connection, async (db) => describeOccupied(await readSchemaObjects(db, schemas)));
  if (occupied.length > 0 && !overwrite) {
    throw new AgentError('refused', `restore into ${target.name}: schema${occupied.length > 1 ? 's' : ''} ${occupied.join(', ')} already hold${occupied.length > 1 ? '' : 's'} data`, {
      hint: 'pass --yes to restore over them (the dump drops and recreates what it contains), or --target another database entry',
    });
  }
  await withConnection(target.name, target.connection, async (db) => {
    await checkTarget(db, target.name, { skipBinlog, replay: false });
    if (schema !== undefined) await db.query(`CREATE DATABASE IF NOT EXISTS \`${schema.replace(/`/g, '``')}\``);
  });

  const client = await locateTool(env.config.tools.client, ['mariadb', 'mysql'], 'tools.client');
  const partly = `schema${schemas.length > 1 ? 's' : ''} ${schemas.join(', ')} of ${target.name} may be partly restored`;
  log.info({ schemas, target: target.name }, 'foreign dump restore started');
  await withDefaultsFile(target.connection, client.flavor, async (defaultsFile) => {
    const args = [`--defaults-file=${defaultsFile}`, '--batch', '--max-allowed-packet=1G', '--default-character-set=utf8mb4'];
    if (skipBinlog) args.push('--init-command=SET sql_log_bin=0');
    if (schema !== undefined) args.push(`--database=${schema}`);
    const cancel = new AbortController();
    signal?.addEventListener('abort', () => cancel.abort(signal.reason), { once: true });
    const tool = startTool(client.path, args, { stdin: 'pipe', stdout: 'ignore', signal: cancel.signal });
    const feed = (async () => pipeline(await openPlain(progress), createDecompressor(outer.compression), tool.stdin))().catch((err: unknown) => {
      cancel.abort(err);
      throw err;
    });
    const [fed, exited] = await Promise.allSettled([feed, tool.done]);
    if (fed.status === 'fulfilled' && exited.status === 'fulfilled') return;
    const reason: unknown = exited.status === 'rejected' ? exited.reason : (fed as PromiseRejectedResult).reason;
    const line = reason instanceof ToolError ? clientErrorLine(reason.stderr) : undefined;
    throw new AgentError(reason instanceof ToolError ? 'tool' : 'storage', `restore ${key} into ${target.name}: ${line ?? describeToolFailure(reason)}`, { hint: partly, cause: reason });
  });
  log.info({ schemas }, 'foreign dump restored');
  return { ...base, into: target.name, schemas, unterminated: !scanner.complete };
}

/** The first bytes of `source` as `through` turns them out (raw, or decompressed); the read stops there. */
async function readHead(source: Readable, through: (s: Readable) => Readable): Promise<Uint8Array> {
  const stream = through(source);
  source.on('error', (err) => stream.destroy(err));
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parts.push(chunk);
      length += chunk.length;
      if (length >= HEAD_BYTES) break;
    }
  } finally {
    stream.destroy();
    source.destroy();
  }
  return Buffer.concat(parts).subarray(0, HEAD_BYTES);
}

/** Reads the whole object through its decryption and decompression and drops it: a cut or damaged stream fails here. */
async function readThrough(open: () => Promise<Readable>, compression: Algorithm, key: string, explain: (err: unknown) => AgentError | undefined): Promise<void> {
  const discard = new Writable({ write: (_chunk: Buffer, _encoding, callback) => callback() });
  await pipeline(await open(), createDecompressor(compression), discard).catch((err: unknown) => {
    throw explain(err) ?? new AgentError('integrity', `--key ${key}: ${messageOf(err)} (a cut or damaged archive); nothing was written`, { cause: err });
  });
}

/** `source` through the decryption `stages` (none: as it is); an error on either side ends both. */
function through(source: Readable, stages: Duplex[]): Readable {
  let out = source;
  for (const stage of stages) {
    const from = out;
    from.on('error', (err) => stage.destroy(err));
    stage.on('close', () => from.destroy());
    // Its reader hears its errors; one after the reader is gone must not be an unhandled 'error' (job-registry.ts).
    stage.on('error', () => undefined);
    out = from.pipe(stage);
  }
  return out;
}

/** `source` counted as it is read (a transform, so back-pressure and errors pass through as in any pipe). */
function withProgress(source: Readable, onBytes: (bytes: number) => void): Readable {
  let bytes = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes((bytes += chunk.length));
      callback(null, chunk);
    },
  });
  source.on('error', (err) => counted.destroy(err));
  // Its reader hears its errors; one after the reader is gone must not be an unhandled 'error' (job-registry.ts).
  counted.on('error', () => undefined);
  return source.pipe(counted);
}
