import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EncryptionRecord, ManifestObject } from '../catalog/manifest.ts';
import { ToolError } from '../capture/tool-process.ts';
import { shortRecipient } from '../config/age-recipient.ts';
import { AgentError, messageOf } from '../errors.ts';
import { AGE_TOOL, ageMessage, createAgeDecryptor, isWrongIdentity, locateAge } from '../pipeline/age-cli.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { openVerified, verifyObject } from './fetch.ts';

/**
 * Reading encrypted data objects back: the age CLI with the identity file the user configured
 * (only its path is passed: `age -d -i PATH`). Every reader that turns stored bytes into
 * plaintext goes through `decryptStages`; every restore first reads each encrypted object once in
 * full through age (`verifyDecryptable`), so a wrong identity, a truncated object or a flipped
 * byte is refused before anything is written, as age authenticates every 64 KiB chunk.
 */

/** How this restore decrypts: the configured age (tools.age) and the identity file, if any. */
export interface Decryption {
  agePath: string | undefined;
  identityFile: string | undefined;
  /**
   * How messages name the identity and say where to give another: for an identity given in an
   * API request, whose file is a private temp file the user never saw (`identity`), and where an
   * API caller gives one. Default: the file's path, and encryption.identity_file or --identity FILE.
   */
  label?: { identity?: string | undefined; where: string } | undefined;
}

const nameOf = (d: Decryption) => d.label?.identity ?? `the identity in ${d.identityFile ?? '(none)'}`;
const whereOf = (d: Decryption) => d.label?.where ?? 'encryption.identity_file or --identity FILE';

/** The recipients an object was encrypted to, for messages: `age1abc…xyz, age1def…uvw`. */
export function describeRecipients(encryption: EncryptionRecord): string {
  return encryption.recipients.map((r) => shortRecipient(r.recipient)).join(', ');
}

/** The stages from stored bytes to the compressed plaintext: age -d when encrypted, none otherwise. */
export async function decryptStages(encryption: EncryptionRecord | null | undefined, decryption: Decryption, what: string, signal?: AbortSignal): Promise<Duplex[]> {
  if (!encryption) return [];
  if (decryption.identityFile === undefined) {
    throw new AgentError('refused', `${what}: it is encrypted with age to ${describeRecipients(encryption)}, and no identity is configured; nothing was written`, {
      hint: decryption.label
        ? `give the age key of one of these recipients (${decryption.label.where})`
        : 'set encryption.identity_file of the database entry (or pass --identity FILE) to the age key of one of these recipients',
    });
  }
  try {
    await access(decryption.identityFile, constants.R_OK);
  } catch (err) {
    throw new AgentError('refused', `${what}: cannot read ${decryption.label?.identity ?? `the identity file ${decryption.identityFile}`} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); nothing was written`, {
      hint: `give the path of a readable age key file (${whereOf(decryption)})`,
      cause: err,
    });
  }
  const age = await locateAge(decryption.agePath);
  return [createAgeDecryptor(age.path, decryption.identityFile, signal)];
}

/** A failure of age while reading `object`, explained: the wrong key (naming the recipients), or damaged data. */
export function explainDecryptFailure(err: unknown, encryption: EncryptionRecord, decryption: Decryption, what: string): AgentError | undefined {
  if (!(err instanceof ToolError) || err.tool !== AGE_TOOL) return undefined;
  if (isWrongIdentity(err.stderr)) {
    return new AgentError('refused', `${what}: ${nameOf(decryption)} does not open it: it was encrypted to ${describeRecipients(encryption)}; nothing was written`, {
      hint: `give the identity${decryption.label?.identity ? '' : ' file'} of one of these recipients (${whereOf(decryption)}); \`age-keygen -y FILE\` prints the recipient of a key file`,
      cause: err,
    });
  }
  return new AgentError('integrity', `${what}: age cannot decrypt it: ${ageMessage(err.stderr) || messageOf(err)}; nothing was written`, {
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
    if (!(err instanceof ToolError && isWrongIdentity(err.stderr))) {
      await verifyObject(storage, object, options.signal ? { signal: options.signal } : {}).catch((found: unknown) => {
        if (found instanceof AgentError && found.kind === 'integrity') throw damaged(found);
      });
    }
    throw explainDecryptFailure(err, encryption, decryption, options.what) ?? new AgentError('storage', `${options.what}: ${messageOf(err)}`, { cause: err });
  }
}
