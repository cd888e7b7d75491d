import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isPassphraseRecord, type EncryptionRecord, type ManifestObject } from '../catalog/manifest.ts';
import { ToolError } from '../capture/tool-process.ts';
import { shortRecipient } from '../config/age-recipient.ts';
import { AgentError, messageOf } from '../errors.ts';
import { AGE_TOOL, ageMessage, createAgeDecryptor, isWrongIdentity, locateAge } from '../pipeline/age-cli.ts';
import { AgePassphraseError, createPassphraseDecryptor } from '../pipeline/age-passphrase.ts';
import { isAgeFailure } from '../pipeline/encryption.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { openVerified, verifyObject } from './fetch.ts';

/**
 * Reading encrypted data objects back: X25519-encrypted ones by the age CLI with the identity file
 * the user configured (only its path is passed: `age -d -i PATH`), passphrase-encrypted ones by
 * the age library in a worker thread that reads the passphrase file (age-passphrase.ts). Every
 * reader that turns stored bytes into plaintext goes through `decryptStages`; every restore first
 * reads each encrypted object once in full through it (`verifyDecryptable`), so a wrong key, a
 * truncated object or a flipped byte is refused before anything is written, as age authenticates
 * every 64 KiB chunk.
 */

/** How this restore decrypts: the configured age (tools.age), the identity file and the passphrase file, if any. */
export interface Decryption {
  agePath: string | undefined;
  identityFile: string | undefined;
  passphraseFile?: string | undefined;
  /**
   * How messages name the identity and say where to give another: for an identity given in an
   * API request, whose file is a private temp file the user never saw (`identity`), and where an
   * API caller gives one. Default: the file's path, and encryption.identity_file or --identity FILE.
   */
  label?: { identity?: string | undefined; where: string } | undefined;
}

const nameOf = (d: Decryption) => d.label?.identity ?? `the identity in ${d.identityFile ?? '(none)'}`;
const whereOf = (d: Decryption) => d.label?.where ?? 'encryption.identity_file or --identity FILE';

/** Who an object was encrypted to, for messages: `age1abc…xyz, age1def…uvw`, or `a passphrase (scrypt)`. */
export function describeRecipients(encryption: EncryptionRecord): string {
  return encryption.recipients.map((r) => (r.type === 'scrypt' ? 'a passphrase (scrypt)' : shortRecipient(r.recipient))).join(', ');
}

/** The stages from stored bytes to the compressed plaintext: age -d when encrypted, none otherwise. */
export async function decryptStages(encryption: EncryptionRecord | null | undefined, decryption: Decryption, what: string, signal?: AbortSignal): Promise<Duplex[]> {
  if (!encryption) return [];
  return [await decryptStage(isPassphraseRecord(encryption) ? 'passphrase' : 'identity', `it is encrypted with age to ${describeRecipients(encryption)}`, decryption, what, signal)];
}

/**
 * One decryption stage: with the passphrase file for a passphrase-encrypted object, with the
 * identity file (age CLI) otherwise. `encryptedTo` says what the object was encrypted to, for the
 * refusal when the needed secret is not configured or not readable.
 */
export async function decryptStage(needs: 'identity' | 'passphrase', encryptedTo: string, decryption: Decryption, what: string, signal?: AbortSignal): Promise<Duplex> {
  const file = needs === 'passphrase' ? decryption.passphraseFile : decryption.identityFile;
  const names = needs === 'passphrase' ? { thing: 'passphrase file', setting: 'encryption.passphrase_file', flag: '--passphrase-file FILE' } : { thing: 'identity', setting: 'encryption.identity_file', flag: '--identity FILE' };
  if (file === undefined) {
    throw new AgentError('refused', `${what}: ${encryptedTo}, and no ${names.thing} is configured; nothing was written`, {
      hint:
        needs === 'passphrase'
          ? `set ${names.setting} of the database entry (or pass ${names.flag}) to the file that holds the passphrase`
          : decryption.label
            ? `give the age key of one of these recipients (${decryption.label.where})`
            : `set ${names.setting} of the database entry (or pass ${names.flag}) to the age key of one of these recipients`,
    });
  }
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    const named = needs === 'identity' && decryption.label?.identity ? decryption.label.identity : `the ${needs === 'passphrase' ? 'passphrase' : 'identity'} file ${file}`;
    throw new AgentError('refused', `${what}: cannot read ${named} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); nothing was written`, {
      hint: needs === 'passphrase' ? `give the path of a readable passphrase file (${names.setting} or ${names.flag})` : `give the path of a readable age key file (${whereOf(decryption)})`,
      cause: err,
    });
  }
  if (needs === 'passphrase') return createPassphraseDecryptor(file, signal);
  const age = await locateAge(decryption.agePath);
  return createAgeDecryptor(age.path, file, signal);
}

/** Whether a decryption failed because the key (identity or passphrase) does not open the file. */
export function isWrongKey(err: unknown): boolean {
  if (err instanceof AgePassphraseError) return err.reason === 'passphrase';
  return err instanceof ToolError && err.tool === AGE_TOOL && isWrongIdentity(err.stderr);
}

/** What age said when it failed (the CLI's stderr without its footer, or the library's words). */
export function decryptMessage(err: ToolError | AgePassphraseError): string {
  return err instanceof ToolError ? ageMessage(err.stderr) || messageOf(err) : `age: ${err.message}`;
}

/** A failure of age while reading `what`, explained: the wrong key (naming the recipients), or damaged data. */
export function explainDecryptFailure(err: unknown, encryption: EncryptionRecord, decryption: Decryption, what: string): AgentError | undefined {
  return explainAgeFailure(err, describeRecipients(encryption), decryption, what);
}

/**
 * The same, for an object described by `encryptedTo` (the recipients of a manifest, or what an
 * archive's header tells). A passphrase worker that cannot read its file is a refusal too.
 */
export function explainAgeFailure(err: unknown, encryptedTo: string, decryption: Decryption, what: string): AgentError | undefined {
  if (!isAgeFailure(err)) return undefined;
  if (err instanceof AgePassphraseError && err.reason === 'passphrase') {
    return new AgentError('refused', `${what}: the passphrase in ${decryption.passphraseFile ?? '(none)'} does not open it: it was encrypted to ${encryptedTo}; nothing was written`, {
      hint: 'give the file that holds the passphrase the backup was made with (encryption.passphrase_file or --passphrase-file FILE)',
      cause: err,
    });
  }
  if (err instanceof AgePassphraseError && (err.reason === 'passphrase-file' || err.reason === 'failed')) {
    return new AgentError('refused', `${what}: ${err.message}; nothing was written`, { hint: 'check encryption.passphrase_file or --passphrase-file', cause: err });
  }
  if (isWrongKey(err)) {
    return new AgentError('refused', `${what}: ${nameOf(decryption)} does not open it: it was encrypted to ${encryptedTo}; nothing was written`, {
      hint: `give the identity${decryption.label?.identity ? '' : ' file'} of one of these recipients (${whereOf(decryption)}); \`age-keygen -y FILE\` prints the recipient of a key file`,
      cause: err,
    });
  }
  return new AgentError('integrity', `${what}: age cannot decrypt it: ${decryptMessage(err)}; nothing was written`, {
    hint: 'the stored object is damaged (truncated or altered): restore another backup',
    cause: err,
  });
}

/**
 * Reads an encrypted object once in full, in fixed memory: its size and SHA-256 against the
 * manifest, and every chunk through `age -d` with the identity, discarding the plaintext. Throws a
 * refusal naming the recipients for a wrong identity, an integrity error for damaged data.
 */
export async function verifyDecryptable(
  storage: StorageDriver,
  object: ManifestObject,
  encryption: EncryptionRecord,
  decryption: Decryption,
  options: { signal?: AbortSignal; what: string },
): Promise<void> {
  const discard = new Writable({ write: (_chunk: Buffer, _encoding, callback) => callback() });
  let source: Readable | undefined;
  try {
    const stages = await decryptStages(encryption, decryption, options.what, options.signal);
    source = await openVerified(storage, object, options.signal ? { signal: options.signal } : {});
    await pipeline([source, ...stages, discard]);
  } catch (err) {
    const damaged = (found: AgentError) =>
      new AgentError('integrity', `${options.what}: ${found.message}; nothing was written`, { hint: 'the stored object is damaged: restore another backup', cause: found });
    if (err instanceof AgentError) throw err.kind === 'integrity' ? damaged(err) : err;
    // age fails at the damaged chunk, before the digest completes at the end: name the stored
    // bytes' mismatch when there is one (one more read, only on failure), else age's own words.
    if (!isWrongKey(err)) {
      await verifyObject(storage, object, options.signal ? { signal: options.signal } : {}).catch((found: unknown) => {
        if (found instanceof AgentError && found.kind === 'integrity') throw damaged(found);
      });
    }
    throw explainDecryptFailure(err, encryption, decryption, options.what) ?? new AgentError('storage', `${options.what}: ${messageOf(err)}`, { cause: err });
  }
}
