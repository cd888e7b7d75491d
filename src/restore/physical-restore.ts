import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Manifest } from '../catalog/manifest.ts';
import { diedOfBrokenPipe, isClosedPipe, startTool, type ToolProcess } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor, zstdEngine, type Algorithm } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { dataObject } from './download.ts';
import { openVerified, verifyObject } from './fetch.ts';
import { decryptStages, verifyDecryptable, type Decryption } from './decrypt.ts';

export interface PhysicalRestoreOptions {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  /** Full backup first, then each incremental in order (restoreChain). */
  chain: Manifest[];
  datadir: string;
  /** Allow a non-empty datadir: it is moved aside, never deleted. */
  replace: boolean;
  /** How encrypted backups of the chain are decrypted (the identity file). */
  decryption: Decryption;
  logger: Logger;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
  now?: () => Date;
}

/**
 * Pids of processes whose working directory is `dir` (a running mariadbd sits in its datadir),
 * compared by device and inode, so a path through a symlinked parent still matches. Fails closed:
 * a process whose working directory cannot be read (EACCES when not root) makes the answer unknown.
 */
export async function processesIn(dir: string, proc = '/proc'): Promise<number[]> {
  const target = await stat(dir);
  const entries = await readdir(proc).catch((err: unknown) => {
    throw new AgentError('refused', `restore into ${dir}: cannot tell whether a server uses it: read ${proc}: ${messageOf(err)}`);
  });
  // Every pid namespace has a pid 1: a listing without it hides other users' processes (proc
  // mounted with hidepid=), and a server among them would go unseen.
  if (!entries.includes('1')) {
    throw new AgentError('refused', `restore into ${dir}: cannot tell whether a server uses it: ${proc} does not show every process (mounted with hidepid=?)`, {
      hint: 'run the restore as root or in a group exempt from hidepid (gid=), or stop the server and restore into a new, empty --datadir',
    });
  }
  const pids: number[] = [];
  const unknown: string[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await stat(`${proc}/${entry}/cwd`).catch((err: NodeJS.ErrnoException) => {
      // The process exited meanwhile: it uses nothing.
      if (err.code === 'ENOENT' || err.code === 'ESRCH') return undefined;
      unknown.push(`pid ${entry}: ${err.code ?? messageOf(err)}`);
      return undefined;
    });
    if (cwd && cwd.dev === target.dev && cwd.ino === target.ino) pids.push(Number(entry));
  }
  if (pids.length === 0 && unknown.length > 0) {
    throw new AgentError('refused', `restore into ${dir}: cannot tell whether a server uses it: the working directory of ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ` and ${unknown.length - 3} more` : ''} cannot be read`, {
      hint: 'run the restore as root (or as the user the server runs as), or stop the server and restore into a new, empty --datadir',
    });
  }
  return pids;
}

/**
 * Makes `datadir` ready to receive a restore: a missing or empty directory as it is; a non-empty
 * one only with `replace`, never while a process runs in it, and moved aside (never deleted) once
 * `verify` has checked everything the restore will write. Returns where it was moved.
 */
export async function claimDatadir(datadir: string, replace: boolean, verify: () => Promise<void>, now: () => Date = () => new Date()): Promise<string | undefined> {
  const existing = await readdir(datadir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw new AgentError('refused', `restore into ${datadir}: cannot read the directory: ${messageOf(err)}`, {
      hint: 'give --datadir a directory path this user can read and write, or one that does not exist yet',
      cause: err,
    });
  });
  if (existing.length > 0 && !replace) {
    throw new AgentError('refused', `restore into ${datadir}: the directory is not empty`, {
      hint: 'give a new, empty --datadir, or pass --replace-datadir to move the existing one aside',
    });
  }
  const refuseIfRunning = async () => {
    const running = await processesIn(datadir);
    if (running.length > 0) {
      throw new AgentError('refused', `restore into ${datadir}: a process runs in it (pid ${running.join(', ')}); stop the server first`);
    }
  };
  if (existing.length > 0) await refuseIfRunning();
  await verify();
  if (existing.length === 0) return undefined;
  // Again, right before the move: a server may have started while the archive was read.
  await refuseIfRunning();
  const stamp = now().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const movedAside = join(dirname(datadir), `${basename(datadir)}.before-restore-${stamp}`);
  await rename(datadir, movedAside);
  return movedAside;
}

/** Feeds `source`, decompressed, into an unpacking tool (mbstream -x, tar -x); fails with `what` when either side does. */
export async function unpackStream(source: Readable, compression: Algorithm, command: string, args: readonly string[], what: string, signal?: AbortSignal, stopsAtEnd = false, before: readonly Duplex[] = []): Promise<void> {
  // The zstd command, when installed, decompresses straight into the unpacking tool (one pipe
  // between the two children): the uncompressed stream never passes through the agent. Not for a
  // tool that stops reading at its end (tar): zstd would fail writing the padding it leaves.
  const engine = compression === 'zstd' && !stopsAtEnd && process.env['AGENT_ZSTD_PIPE'] !== '0' ? await zstdEngine() : undefined;
  let feed: Promise<void>;
  let exit: Promise<void>;
  if (engine?.kind === 'cli') {
    const zstd = startTool(engine.path, ['-d', '-q', '-c', '-'], { stdin: 'pipe', name: 'zstd', ...(signal ? { signal } : {}) });
    let tool: ToolProcess;
    try {
      tool = startTool(command, args, { stdin: zstd.stdout, stdout: 'ignore', ...(signal ? { signal } : {}) });
    } finally {
      zstd.stdout.destroy();
    }
    feed = pipeline([source, ...before, zstd.stdin]);
    // The cause, not its echo: an unpacking tool that fails makes zstd die of the broken pipe
    // (its error is the tool's); a zstd that fails on its input leaves the tool a cut stream (the
    // error is zstd's).
    exit = Promise.allSettled([zstd.done, tool.done]).then(([z, t]) => {
      if (t.status === 'rejected' && (z.status === 'fulfilled' || diedOfBrokenPipe(z.reason))) throw t.reason;
      if (z.status === 'rejected') throw z.reason;
      if (t.status === 'rejected') throw t.reason;
    });
  } else {
    const tool = startTool(command, args, { stdin: 'pipe', stdout: 'ignore', ...(signal ? { signal } : {}) });
    feed = pipeline([source, ...before, createDecompressor(compression), tool.stdin]);
    exit = tool.done;
  }
  const [fed, exited] = await Promise.allSettled([feed, exit]);
  // tar (`stopsAtEnd`) stops reading at its end-of-archive blocks and exits 0, leaving the record
  // padding after them unread: a closed pipe after a clean exit is the tool being done. mbstream
  // reads to the end, so for it the same is a failure.
  if (stopsAtEnd && exited.status === 'fulfilled' && fed.status === 'rejected' && isClosedPipe(fed.reason)) return;
  if (fed.status === 'rejected' || exited.status === 'rejected') {
    // A closed pipe on the feeding side is the echo of a child that failed: its own error says why.
    const echo = fed.status === 'rejected' && isClosedPipe(fed.reason) && exited.status === 'rejected';
    const err: unknown = fed.status === 'rejected' && !echo ? fed.reason : (exited as PromiseRejectedResult).reason;
    throw err instanceof AgentError ? err : new AgentError('tool', `${what}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * Prepares an unpacked backup in `datadir` with mariadb-backup, then each incremental directory in
 * order: the result is a datadir a server starts on.
 */
export async function prepareDatadir(config: Pick<AgentConfig, 'tools'>, datadir: string, incrementals: readonly string[], signal?: AbortSignal): Promise<void> {
  const backupTool = await locateTool(config.tools.backup, ['mariadb-backup', 'mariabackup'], 'tools.backup');
  // mariadb-backup prepares incrementals without --apply-log-only (10.11's rejects the option);
  // Percona XtraBackup needs it on every step but the last.
  const applyLogOnly = backupTool.flavor !== 'mariadb';
  const prepare = async (extra: string[], last: boolean) => {
    const args = ['--prepare', `--target-dir=${datadir}`, ...extra, ...(applyLogOnly && !last ? ['--apply-log-only'] : [])];
    await startTool(backupTool.path, args, { stdout: 'ignore', ...(signal ? { signal } : {}) }).done.catch((err: unknown) => {
      throw new AgentError('tool', `prepare ${datadir}: ${messageOf(err)}`, { cause: err });
    });
  };
  await prepare([], incrementals.length === 0);
  for (const [i, dir] of incrementals.entries()) await prepare([`--incremental-dir=${dir}`], i === incrementals.length - 1);
}

/**
 * Restores a physical chain into a datadir: each backup is streamed from storage, verified,
 * decompressed and unpacked with mbstream (the full into the datadir, each incremental into a
 * sibling work directory), then prepared in order with mariadb-backup; the result is a datadir a
 * server starts on. A non-empty datadir needs `replace`, is refused while a process runs in it,
 * and is moved aside rather than deleted.
 */
export async function restorePhysical(options: PhysicalRestoreOptions): Promise<{ datadir: string; movedAside: string | undefined }> {
  const datadir = resolve(options.datadir);
  const log = options.logger.child({ datadir, backup: options.chain.at(-1)?.id });
  // Every object of the chain is checked before the datadir is touched: a mismatch in the last
  // incremental must not cost the existing datadir its place.
  // An encrypted one is read through age too: a wrong identity is refused here as well.
  const movedAside = await claimDatadir(datadir, options.replace, async () => {
    for (const manifest of options.chain) {
      const signal = options.signal ? { signal: options.signal } : {};
      if (manifest.encryption) {
        await verifyDecryptable(options.storage, dataObject(manifest), manifest.encryption, options.decryption, { what: `restore backup ${manifest.id} into ${datadir}`, ...signal });
      } else {
        await verifyObject(options.storage, dataObject(manifest), signal);
      }
    }
    log.info({ backups: options.chain.map((m) => m.id) }, 'chain verified');
  }, options.now);
  if (movedAside) log.info({ movedAside }, 'existing datadir moved aside');

  const mbstream = await locateTool(options.config.tools.mbstream, ['mbstream'], 'tools.mbstream').catch(() => undefined);
  const mbstreamPath = mbstream?.path ?? 'mbstream';
  const workDirs: string[] = [];
  let done = 0;
  try {
    for (const [index, manifest] of options.chain.entries()) {
      const dir = index === 0 ? datadir : join(dirname(datadir), `.${basename(datadir)}.restore-inc-${index}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o750 });
      if (index > 0) workDirs.push(dir);
      const object = dataObject(manifest);
      const base = done;
      const source = await openVerified(options.storage, object, {
        ...(options.onProgress ? { onProgress: (bytes: number) => options.onProgress?.(base + bytes) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const decrypt = await decryptStages(manifest.encryption, options.decryption, `restore backup ${manifest.id} into ${datadir}`, options.signal);
      await unpackStream(source, object.compression, mbstreamPath, ['-x', '-C', dir], `unpack backup ${manifest.id}`, options.signal, false, decrypt);
      done += object.sizeBytes;
      log.info({ backup: manifest.id, type: manifest.type }, 'backup unpacked');
    }
    await prepareDatadir(options.config, datadir, workDirs, options.signal);
    log.info({ backups: options.chain.map((m) => m.id) }, 'datadir prepared');
  } catch (err) {
    // Leave no half-restored datadir behind as if it were usable; the moved-aside one stays.
    await rm(datadir, { recursive: true, force: true });
    throw err;
  } finally {
    for (const dir of workDirs) await rm(dir, { recursive: true, force: true });
  }
  return { datadir, movedAside };
}
