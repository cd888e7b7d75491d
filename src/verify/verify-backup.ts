import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Manifest, ManifestObject } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { describeRecipients, decryptStages, type Decryption } from '../restore/decrypt.ts';
import { DumpScanner } from '../restore/foreign-format.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { readObject } from './read-object.ts';
import { verifyByRestore } from './restore-depth.ts';
import type { VerifyDepth, VerifyOutcome, VerifyProblem } from './types.ts';
import { prepareProblems, XbstreamScanner } from './xbstream.ts';

/** An outcome with what the reader should know besides problems (e.g. a depth that could not be reached). */
export interface VerifyReport extends VerifyOutcome {
  /** The depth that was asked for; `depth` is the one actually proven when they differ. */
  requestedDepth: VerifyDepth;
  notes: string[];
  /** Objects read and their stored bytes. */
  objects: number;
  bytes: number;
}

export interface BackupVerifyInput {
  storage: StorageDriver;
  /** The database entry (undefined for a store given with --from: then no restore depth). */
  database: DatabaseConfig | undefined;
  manifest: Manifest;
  /** Full backup first, then each incremental down to `manifest` (just `manifest` for a dump). */
  chain: Manifest[];
  depth: VerifyDepth;
  /** Depth restore: replay the archived binlog past the backup up to the last recoverable time. */
  replayBinlog?: boolean;
  decryption: Decryption;
  /** The agent's tools (the restore depth starts a server and the restore tools). */
  config: Pick<AgentConfig, 'tools'>;
  logger: Logger;
  signal: AbortSignal;
  now?: () => Date;
}

/** The content scanner of a data object, and what to ask of it once the stream ended. */
export function contentCheck(manifest: Manifest, object: ManifestObject): { sink: Writable; problems(): string[] } {
  const rawSize = (bytes: number) => (bytes === object.rawSizeBytes ? [] : [`it decompresses to ${bytes} bytes, the manifest says ${object.rawSizeBytes}`]);
  if (manifest.type === 'dump') {
    const scanner = new DumpScanner();
    return {
      sink: scanner,
      problems: () => dumpProblems({ complete: scanner.complete, schemas: scanner.schemas }, manifest.schemas).concat(rawSize(scanner.bytes)),
    };
  }
  const scanner = new XbstreamScanner();
  return {
    sink: scanner,
    problems: () =>
      prepareProblems(scanner.files, scanner.kept, { type: manifest.type === 'incremental' ? 'incremental' : 'full', fromLsn: manifest.physical?.fromLsn, toLsn: manifest.physical?.toLsn }).concat(rawSize(scanner.bytes)),
  };
}

/** Pure: what is wrong with a logical dump, from its scan: the completion marker, and every schema the manifest lists. */
export function dumpProblems(scan: { complete: boolean; schemas: ReadonlySet<string> }, schemas: readonly string[]): string[] {
  const problems: string[] = [];
  if (!scan.complete) problems.push('the dump does not end with the dump tool\'s completion line (-- Dump completed): it is cut short or was not written by a dump that finished');
  const missing = schemas.filter((s) => !scan.schemas.has(s));
  if (missing.length > 0) problems.push(`the dump creates no schema ${missing.map((s) => `\`${s}\``).join(', ')} (no CREATE DATABASE or USE line), which the manifest lists`);
  return problems;
}

/**
 * Verifies one backup at `depth`: objects (every data object there with its size and SHA-256),
 * archive (objects, and in the same read the content decrypted, decompressed to its end and
 * well formed), restore (archive, then a throwaway restore: restore-depth.ts).
 */
export async function verifyBackup(input: BackupVerifyInput): Promise<VerifyReport> {
  const now = input.now ?? (() => new Date());
  const { manifest } = input;
  const startedAt = now().toISOString();
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  let depth = input.depth;
  const log = input.logger.child({ database: manifest.database, backup: manifest.id, depth });
  const decodes = depth !== 'objects';
  // Encrypted without an identity: only the stored bytes can be checked; say so, record `objects`.
  if (decodes && manifest.encryption && input.decryption.identityFile === undefined) {
    notes.push(
      `the ${depth} depth could only check the stored bytes: the backup is encrypted with age to ${describeRecipients(manifest.encryption)} and no identity is configured (encryption.identity_file or --identity); verified at depth objects`,
    );
    depth = 'objects';
  }
  let bytes = 0;
  for (const object of manifest.objects) {
    const problem = (message: string) => problems.push({ backupId: manifest.id, key: object.key, message });
    let content: ReturnType<typeof contentCheck> | undefined;
    let decrypt: Awaited<ReturnType<typeof decryptStages>> = [];
    if (depth !== 'objects') {
      content = contentCheck(manifest, object);
      try {
        decrypt = await decryptStages(manifest.encryption, input.decryption, `verify backup ${manifest.id}`, input.signal);
      } catch (err) {
        problem(messageOf(err));
        continue;
      }
    }
    const reading = await readObject(input.storage, object, content ? { decrypt, sink: content.sink } : undefined, input.signal);
    bytes += object.sizeBytes;
    for (const message of reading.stored) problem(message);
    if (reading.decode !== undefined) problem(`the content does not decode to its end: ${reading.decode}`);
    else if (content && reading.decoded) for (const message of content.problems()) problem(message);
  }
  log.info({ problems: problems.length }, 'backup objects verified');
  if (input.depth === 'restore' && depth === 'restore' && problems.length === 0) {
    if (!input.database) {
      notes.push('the restore depth needs a configured database entry (its tools): not run for a store given with --from; verified at depth archive');
      depth = 'archive';
    } else {
      // A throw says the environment failed (no disk, no server binary), not the backup: it
      // reaches the caller, which reports it without recording a verdict on the backup.
      problems.push(
        ...(await verifyByRestore({
          config: input.config,
          storage: input.storage,
          database: input.database,
          chain: input.chain,
          replayBinlog: input.replayBinlog ?? false,
          identityFile: input.decryption.identityFile,
          logger: log,
          signal: input.signal,
          onNotice: (message) => notes.push(message),
        })),
      );
    }
  }
  return {
    database: manifest.database,
    backupId: manifest.id,
    depth,
    requestedDepth: input.depth,
    ok: problems.length === 0,
    problems,
    notes,
    objects: manifest.objects.length,
    bytes,
    startedAt,
    finishedAt: now().toISOString(),
  };
}
