import { PassThrough, type Duplex, type Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { commitManifest, manifestKeyOf } from '../catalog/catalog.ts';
import { leasePrefix } from '../lease/leases.ts';
import { hostname } from 'node:os';
import { ENCRYPTED_MANIFEST_VERSION, MANIFEST_FORMAT, PLAIN_MANIFEST_VERSION, serializeManifest, type EncryptionRecord, type Manifest } from '../catalog/manifest.ts';
import type { ServerInfo } from '../capture/server.ts';
import type { ToolInfo } from '../capture/tools.ts';
import { AGENT_VERSION } from '../version.ts';
import { startTool, ToolError, type ToolProcess } from '../capture/tool-process.ts';
import type { Compression } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { openCompressor } from '../pipeline/compress.ts';
import { createEncryptor, describeEncrypt, isAgeFailure, type Encrypt } from '../pipeline/encryption.ts';
import { CountingStream, DigestStream } from '../pipeline/digest.ts';
import { ExitGate } from '../pipeline/exit-gate.ts';
import { BLOCK_SIZE, Rechunk } from '../pipeline/rechunk.ts';
import { HeadTap } from '../pipeline/head-tap.ts';
import { pipedZstd, startPipedCompression } from '../pipeline/piped-zstd.ts';
import { collectBeforeStream, releaseChunks } from '../pipeline/release-chunks.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError, storageHintOption } from '../storage/errors.ts';

/**
 * The streaming core every backup type shares: a tool's stdout → (1 MiB blocks for Node's zlib) →
 * count → (inspection) → compress → (age encrypt) → exit gate → SHA-256 of the stored bytes → storage, and the manifest commit after
 * it. Sizes and the hash are computed in flight: no temp file, memory bounded by the stages' buffers.
 */

export interface CaptureContext {
  /** Database entry name, for messages. */
  database: string;
  storage: StorageDriver;
  compression: Compression;
  /** Encrypt after compression (age to recipients, or to a passphrase); undefined: store as compressed. */
  encrypt: Encrypt | undefined;
  signal?: AbortSignal | undefined;
}


export interface CaptureRequest {
  file: string;
  args: string[];
  key: string;
  log: Logger;
  /** What the tool does, for errors: "dump database shop". */
  action: string;
  /** A pass-through stage that reads the uncompressed stream (e.g. the dump's binlog coordinates). */
  inspect?: Transform;
  /**
   * The inspection needs only this many bytes of the stream's head: the raw stream may then go
   * from the tool straight into zstd, and `inspect` reads the head decompressed from zstd's output
   * (ended once it has them). Unset: `inspect` reads the whole raw stream as it passes.
   */
  inspectHeadBytes?: number;
  /** A hint for a failure of the tool, from its stderr. */
  hint: (stderr: string) => string;
}

export interface CapturedStream {
  sizeBytes: number;
  rawSizeBytes: number;
  sha256: string;
  /** The tail of the tool's stderr: some tools report results only there. */
  toolStderr: string;
}

/**
 * Fails fast when the storage is unreachable, rejects the credentials or lacks the bucket, before
 * a dump of possibly hours starts (a store is otherwise first contacted when the first part fills).
 */
export async function checkStorage(storage: StorageDriver, database: string): Promise<void> {
  try {
    // The leases folder: a listing the store must answer, that walks a handful of keys, not the archive.
    for await (const _ of storage.list(leasePrefix(database))) break;
  } catch (err) {
    throw new AgentError('storage', `reach storage ${storage.location} of database ${database}: ${describeStorageError(err)}`, {
      ...storageHintOption(err),
      cause: err,
    });
  }
}

export async function removeQuietly(storage: StorageDriver, key: string, log: Logger): Promise<void> {
  try {
    await storage.delete(key);
  } catch (err) {
    log.error({ err, key }, 'could not remove the partial data object; it is not part of any backup');
  }
}

/** Runs the tool and streams its output into `key`. Success = stream stored AND tool exited 0. */
export async function captureToStorage(ctx: CaptureContext, request: CaptureRequest): Promise<CapturedStream> {
  const { file, args, key, log } = request;
  const cancel = new AbortController();
  const onOuterAbort = () => cancel.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (ctx.signal?.aborted) onOuterAbort();

  // Nothing reads the whole raw stream (no inspection, or one of the head only): the tool writes straight into zstd.
  const headOnly = !request.inspect || request.inspectHeadBytes !== undefined;
  const piped = headOnly && ctx.compression.algorithm === 'zstd' ? await pipedZstd() : undefined;
  const digest = new DigestStream();
  const body = new PassThrough({ highWaterMark: BLOCK_SIZE });
  // Started only once the compressor is settled (openCompressor may refuse): an age child waits for its input.
  const encryptStage = () => (ctx.encrypt ? [createEncryptor(ctx.encrypt, cancel.signal)] : []);
  let tool: ToolProcess;
  let stages: (Readable | Duplex | Writable)[];
  let rawBytes: () => number;
  if (piped) {
    log.info({ compressor: `zstd cli -T${piped.threads} (${piped.path}), reading the tool's output directly` }, 'compressing the backup stream');
    collectBeforeStream();
    if (ctx.encrypt) log.info(describeEncrypt(ctx.encrypt), 'encrypting the backup stream with age');
    const run = startPipedCompression(file, args, { ...piped, level: ctx.compression.level }, cancel.signal);
    tool = run.tool;
    // Only the compressed stream passes through the agent: its byte count paces the GCs.
    const compressed = new CountingStream(releaseChunks());
    const tap = request.inspect ? [new HeadTap(request.inspect, request.inspectHeadBytes ?? 0)] : [];
    stages = [run.output, ...tap, compressed, ...encryptStage(), new ExitGate(run.done), digest, body];
    rawBytes = () => {
      const totals = run.totals();
      if (totals.compressed !== compressed.bytes) throw new Error(`zstd reported ${totals.compressed} compressed bytes, the agent read ${compressed.bytes}`);
      return totals.raw;
    };
  } else {
    const compressor = await openCompressor(ctx.compression, cancel.signal);
    log.info({ compressor: compressor.engine }, 'compressing the backup stream');
    collectBeforeStream();
    if (ctx.encrypt) log.info(describeEncrypt(ctx.encrypt), 'encrypting the backup stream with age');
    tool = startTool(file, args, { signal: cancel.signal });
    // The raw stream is the larger side: its byte count paces the GCs that free dead chunks.
    const raw = new CountingStream(releaseChunks());
    // Node's zlib runs each written chunk as one thread-pool task, so it gets 1 MiB blocks (fed the
    // 64 KiB chunks of a pipe it is ~1.7× slower). The zstd CLI reads a pipe anyway, and storing
    // uncompressed needs no transform at all: there the tool's chunks pass on as they are, no copy.
    const blocks = compressor.engine.startsWith('node zlib') ? [new Rechunk()] : [];
    stages = [tool.stdout, ...blocks, raw, ...(request.inspect ? [request.inspect] : []), compressor.stage, ...encryptStage(), new ExitGate(tool.done), digest, body];
    rawBytes = () => raw.bytes;
  }
  // The chain's first error is reported through `chain`. A stage that errors once the chain has
  // settled (a compressor killed late by a cancel: a second SIGTERM to the daemon) would otherwise
  // reach only the pipe's own listener, which rethrows it as an unhandled 'error' and kills the process.
  for (const stage of stages) stage.on('error', () => undefined);
  const chain = pipeline(stages);

  const put = ctx.storage.put(key, body, { signal: cancel.signal, contentType: 'application/octet-stream' }).catch((err: unknown) => {
    // The store gave up (or passed on the tool's failure): stop the tool and the chain so
    // nothing waits on a reader that is gone.
    cancel.abort(err);
    body.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  });

  const [toolResult, chainResult, putResult] = await Promise.allSettled([tool.done, chain, put]);
  ctx.signal?.removeEventListener('abort', onOuterAbort);
  if (toolResult.status === 'fulfilled' && chainResult.status === 'fulfilled' && putResult.status === 'fulfilled') {
    let rawSizeBytes: number;
    try {
      rawSizeBytes = rawBytes();
    } catch (err) {
      await removeQuietly(ctx.storage, key, log);
      throw new AgentError('tool', `compress backup of ${ctx.database}: ${messageOf(err)}`, { hint: 'AGENT_ZSTD_PIPE=0 sends the stream through the agent instead', cause: err });
    }
    return { sizeBytes: digest.bytes, rawSizeBytes, sha256: digest.sha256, toolStderr: tool.stderrTail() };
  }

  await removeQuietly(ctx.storage, key, log);
  throw explainFailure(ctx, request, toolResult, chainResult, putResult);
}

/**
 * Reports the cause, not its echoes. The exit gate hands the tool's own error down the chain, so
 * the store may reject with it: that is a tool failure. A store failure of its own kills the tool
 * (SIGTERM), and then the store's error is the cause.
 */
function explainFailure(
  ctx: CaptureContext,
  request: CaptureRequest,
  toolResult: PromiseSettledResult<void>,
  chainResult: PromiseSettledResult<void>,
  putResult: PromiseSettledResult<unknown>,
): AgentError {
  const name = ctx.database;
  if (ctx.signal?.aborted) {
    const reason: unknown = ctx.signal.reason;
    return new AgentError('internal', `backup of ${name} cancelled${reason === undefined ? '' : `: ${messageOf(reason)}`}`, { cause: reason });
  }
  const toolError = toolResult.status === 'rejected' ? (toolResult.reason as unknown) : undefined;
  const putError = putResult.status === 'rejected' ? (putResult.reason as unknown) : undefined;
  const storageFailed = putError !== undefined && !(putError instanceof ToolError);
  const chainError: unknown = chainResult.status === 'rejected' ? chainResult.reason : undefined;
  // The chain's other children, the zstd and age commands: their failure is neither the store's nor the dump
  // tool's (which then only fails writing to a closed pipe). Its error reaches the chain only when
  // it failed first: torn down after another failure, the chain has that one already.
  const toolName = request.file.split('/').pop();
  const stageError = [putError, chainError].find((e) => (e instanceof ToolError && e.tool !== toolName) || isAgeFailure(e));
  const compressorError: unknown = stageError;
  if (stageError instanceof ToolError && isAgeFailure(stageError)) {
    return new AgentError('tool', `encrypt backup of ${name}: ${messageOf(stageError)}`, {
      hint: 'the age command failed: its message says why (check tools.age and the recipients of the encryption: block)',
      cause: stageError,
    });
  }
  if (isAgeFailure(stageError)) {
    return new AgentError('tool', `encrypt backup of ${name} with the passphrase: ${messageOf(stageError)}`, {
      hint: 'check encryption.passphrase_file: the file must stay readable by the agent',
      cause: stageError,
    });
  }
  if (compressorError instanceof ToolError) {
    return new AgentError('tool', `compress backup of ${name}: ${messageOf(compressorError)}`, {
      hint: 'the zstd command failed: its message says why; AGENT_ZSTD=zlib compresses without it',
      cause: compressorError,
    });
  }
  if (toolError !== undefined && !storageFailed) {
    const stderr = toolError instanceof ToolError ? toolError.stderr : '';
    return new AgentError('tool', `${request.action}: ${messageOf(toolError)}`, { hint: request.hint(stderr), cause: toolError });
  }
  const err = putError ?? chainError;
  return new AgentError('storage', `upload backup of ${name} to ${ctx.storage.location}: ${describeStorageError(err)}`, {
    ...storageHintOption(err),
    cause: err,
  });
}

/**
 * Commits the manifest (the backup now exists), or removes the data objects and reports why not.
 * `confirm` runs first (the backup's lease is still held: prune still spares the data). A manifest
 * write that fails may still have landed (a timeout after the store committed it), so it is read
 * back: stored → the backup is committed; unknown (the read fails too) → the data is kept and the
 * failure reported; the data is removed only when the manifest is known to be absent.
 */
export async function commitOrRemove(storage: StorageDriver, manifest: Manifest, log: Logger, confirm?: () => Promise<void>): Promise<void> {
  const removeData = async () => {
    for (const object of manifest.objects) await removeQuietly(storage, object.key, log);
  };
  if (confirm) {
    try {
      await confirm();
    } catch (err) {
      await removeData();
      throw new AgentError(err instanceof AgentError ? err.kind : 'storage', `commit backup ${manifest.id} of ${manifest.database}: ${messageOf(err)}`, { cause: err });
    }
  }
  let writeError: unknown;
  try {
    await commitManifest(storage, manifest);
    return;
  } catch (err) {
    writeError = err;
  }
  const what = `commit manifest of backup ${manifest.id} to ${storage.location}: ${describeStorageError(writeError)}`;
  let stored: 'same' | 'absent' | 'different';
  try {
    const back = await storage.getVersioned(manifestKeyOf(manifest));
    stored = back === undefined ? 'absent' : back.data.equals(Buffer.from(serializeManifest(manifest))) ? 'same' : 'different';
  } catch (readError) {
    throw new AgentError('storage', `${what}; reading it back failed too (${describeStorageError(readError)}), so the data is kept`, {
      cause: writeError,
      hint: 'once the store answers again, `agent list` shows the backup if its manifest was stored; if not, prune removes the data as an orphan after orphan_grace',
    });
  }
  if (stored === 'same') {
    log.warn({ error: describeStorageError(writeError) }, 'the manifest write reported an error, but the manifest is stored: the backup is committed');
    return;
  }
  if (stored === 'different') {
    throw new AgentError('integrity', `${what}; another manifest is stored under the same ID, so the data is kept`, { cause: writeError });
  }
  await removeData();
  throw new AgentError('storage', what, { ...storageHintOption(writeError), cause: writeError });
}

export interface ManifestFields {
  id: string;
  database: string;
  type: Manifest['type'];
  trigger: Manifest['trigger'];
  startedAt: Date;
  completedAt: Date;
  compression: Compression;
  /** How the data object was encrypted; undefined when stored unencrypted. */
  encryption: EncryptionRecord | undefined;
  key: string;
  stream: CapturedStream;
  schemas: string[];
  binlog: Manifest['binlog'];
  physical?: Manifest['physical'];
  /** Table figures at backup time (verify.record_figures), when taken. */
  figures?: Manifest['figures'];
  server: ServerInfo;
  tool: ToolInfo;
}

/** The manifest of a backup with one data object: the fields every backup type fills alike. */
export function buildManifest(f: ManifestFields): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version: f.encryption ? ENCRYPTED_MANIFEST_VERSION : PLAIN_MANIFEST_VERSION,
    id: f.id,
    database: f.database,
    type: f.type,
    trigger: f.trigger,
    status: 'completed',
    startedAt: f.startedAt.toISOString(),
    completedAt: f.completedAt.toISOString(),
    sizeBytes: f.stream.sizeBytes,
    rawSizeBytes: f.stream.rawSizeBytes,
    compression: f.compression,
    encryption: f.encryption ?? null,
    schemas: f.schemas,
    objects: [
      {
        key: f.key,
        role: 'data',
        sizeBytes: f.stream.sizeBytes,
        sha256: f.stream.sha256,
        compression: f.compression.algorithm,
        rawSizeBytes: f.stream.rawSizeBytes,
      },
    ],
    binlog: f.binlog,
    ...(f.physical ? { physical: f.physical } : {}),
    ...(f.figures ? { figures: f.figures } : {}),
    server: { flavor: f.server.flavor, version: f.server.version, serverId: f.server.serverId, hostname: f.server.hostname },
    tool: { name: f.tool.name, version: f.tool.versionLine },
    agent: { version: AGENT_VERSION, hostname: hostname() },
  };
}
