/**
 * Pure checks of age (https://age-encryption.org/v1) recipient strings, so a typo in a public key
 * is a config error at load with its YAML path, not a failed backup at 01:00. An X25519 recipient
 * is Bech32 (BIP 173, not Bech32m) with the human-readable part "age" and 32 bytes of key: `age1`
 * and 58 characters. This is encoding, not cryptography: the `age` CLI does all the crypto.
 */

export const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

export function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i] as number;
  }
  return chk >>> 0;
}

export function expandHrp(hrp: string): number[] {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >>> 5), 0, ...codes.map((c) => c & 31)];
}

/** Why `text` is not an X25519 age recipient (`age1…`), or undefined when it is one. */
export function recipientProblem(text: string): string | undefined {
  if (text.startsWith('AGE-SECRET-KEY-')) return 'this is a secret key (an identity), not a recipient: give its public key (age-keygen -y FILE) here, and the key file as identity_file on restore hosts';
  if (text.startsWith('ssh-')) return 'SSH recipients are not supported: give an X25519 recipient (age1…, made with age-keygen)';
  if (text !== text.toLowerCase()) return 'must be lowercase (an age1… recipient as age-keygen prints it)';
  if (!text.startsWith('age1')) return 'must be an X25519 age recipient: "age1" followed by 58 characters (age-keygen prints one)';
  const data = text.slice(4);
  if (data.length !== 58) return `must be "age1" followed by 58 characters, not ${data.length}`;
  const values: number[] = [];
  for (const c of data) {
    const value = BECH32_CHARSET.indexOf(c);
    if (value < 0) return `character "${c}" cannot occur in an age recipient (Bech32)`;
    values.push(value);
  }
  if (polymod([...expandHrp('age'), ...values]) !== 1) return 'checksum does not match: a character is wrong or missing (copy the recipient again)';
  return undefined;
}

/**
 * The recipients in a recipients file as age reads one (`age -R`): one per line, blank lines and
 * `#` comments ignored. Problems carry their 1-based line number.
 */
export function parseRecipientsFile(text: string): { recipients: string[]; problems: string[] } {
  const recipients: string[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const problem = recipientProblem(line);
    if (problem) problems.push(`line ${i + 1}: ${problem}`);
    else recipients.push(line);
  });
  return { recipients, problems };
}

/** A short, recognisable form of a recipient for tables and messages: `age1abcd…wxyz`. */
export function shortRecipient(recipient: string): string {
  return recipient.length > 20 ? `${recipient.slice(0, 10)}…${recipient.slice(-6)}` : recipient;
}

/** age's scrypt work factor (log2 of N) for new passphrase-encrypted files: the CLI's default. */
export const SCRYPT_DEFAULT_WORK_FACTOR = 18;
/** Below this a passphrase is too cheap to guess; above the maximum the age library refuses to decrypt. */
export const SCRYPT_MIN_WORK_FACTOR = 10;
export const SCRYPT_MAX_WORK_FACTOR = 20;

/**
 * The passphrase a passphrase file holds: its one line, without the line break that ends it (so
 * `echo SECRET > file` and an editor's file give the passphrase one types at `age -d`'s prompt),
 * or why the file holds none. Pure; the caller never logs the result.
 */
export function parsePassphrase(text: string): { passphrase: string } | { problem: string } {
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase === '') return { problem: 'is empty: it must hold the passphrase on one line' };
  if (/[\r\n]/.test(passphrase)) return { problem: 'holds more than one line: the passphrase is its one line, as age -d asks for it' };
  return { passphrase };
}
