import type { Duplex } from 'node:stream';
import { encryptionRecord, passphraseRecord, type EncryptionRecord } from '../catalog/manifest.ts';
import { ToolError } from '../capture/tool-process.ts';
import type { Compression, Encryption } from '../config/normalize.ts';
import { AGE_EXTENSION, AGE_TOOL, createAgeEncryptor, locateAge } from './age-cli.ts';
import { AgePassphraseError, createPassphraseEncryptor } from './age-passphrase.ts';
import { compressionExtension } from './compress.ts';

/**
 * How a stream is encrypted on its way to storage: by the age CLI to public recipients (the
 * main mode: the backup host holds no secret), or by the age library in a worker thread to a
 * passphrase (age's scrypt recipient: one secret, which the CLI cannot read from a file).
 */
export type Encrypt = { kind: 'recipients'; agePath: string; recipients: readonly string[] } | { kind: 'passphrase'; passphraseFile: string; workFactor: number };

/**
 * How a database's data objects are encrypted: for recipients, the age CLI (located once, before
 * a backup or capture starts, so a missing `age` fails fast); undefined without an encryption block.
 */
export async function encryptionOf(encryption: Encryption | undefined, configuredAge: string | undefined): Promise<Encrypt | undefined> {
  if (!encryption) return undefined;
  if (encryption.passphrase) return { kind: 'passphrase', passphraseFile: encryption.passphrase.file, workFactor: encryption.passphrase.workFactor };
  const age = await locateAge(configuredAge);
  return { kind: 'recipients', agePath: age.path, recipients: encryption.recipients };
}

/** A stage that encrypts what passes as `encrypt` says (age CLI or passphrase worker). */
export function createEncryptor(encrypt: Encrypt, signal?: AbortSignal): Duplex {
  return encrypt.kind === 'recipients' ? createAgeEncryptor(encrypt.agePath, encrypt.recipients, signal) : createPassphraseEncryptor(encrypt.passphraseFile, encrypt.workFactor, signal);
}

/** The manifest's record of an encryption: the public recipients, or the passphrase's type alone. */
export function recordOf(encrypt: Encrypt): EncryptionRecord {
  return encrypt.kind === 'recipients' ? encryptionRecord(encrypt.recipients) : passphraseRecord();
}

/** For logs: how many recipients, or that a passphrase encrypts (never the passphrase). */
export function describeEncrypt(encrypt: Encrypt): Record<string, unknown> {
  return encrypt.kind === 'recipients' ? { recipients: encrypt.recipients.length } : { passphrase: true, scryptWorkFactor: encrypt.workFactor };
}

/** Whether `err` is the failure of an encryption or decryption stage (the age CLI or the passphrase worker). */
export function isAgeFailure(err: unknown): err is ToolError | AgePassphraseError {
  return (err instanceof ToolError && err.tool === AGE_TOOL) || err instanceof AgePassphraseError;
}

/** The extension of a data object: the compression's, then `.age` when encrypted (`.sql.zst.age`). */
export function dataExtension(compression: Compression, encrypt: Encrypt | undefined): string {
  return `${compressionExtension(compression.algorithm)}${encrypt ? AGE_EXTENSION : ''}`;
}
