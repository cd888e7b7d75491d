import { createPrivateKey, createPublicKey } from 'node:crypto';
import { BECH32_CHARSET, expandHrp, polymod } from './age-recipient.ts';

/**
 * Pure checks of an age identity given as text (the body of an API restore request), as age reads
 * an identity file: one `AGE-SECRET-KEY-1…` per line, blank lines and `#` comments ignored. The
 * problems never quote the text, a character or a position of a key: they end up in HTTP answers
 * and job messages. The recipient of each key is derived (X25519: the public key of the secret),
 * so a refusal can say which key was given without showing it.
 */

const PREFIX = 'AGE-SECRET-KEY-1';
/** The DER head of a PKCS#8 X25519 private key; the 32 raw bytes follow. */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

function toBytes(values: readonly number[]): Buffer | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const v of values) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
  }
  if (bits >= 5 || ((acc << (8 - bits)) & 0xff) !== 0) return undefined;
  return Buffer.from(out);
}

function toWords(bytes: Buffer): number[] {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push((acc >>> bits) & 31);
    }
  }
  if (bits > 0) out.push((acc << (5 - bits)) & 31);
  return out;
}

/** The `age1…` recipient of a 32-byte X25519 secret. */
function recipientOf(secret: Buffer): string {
  const spki = createPublicKey(createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  const words = toWords(spki.subarray(spki.length - 32));
  const mod = polymod([...expandHrp('age'), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return `age1${[...words, ...checksum].map((w) => BECH32_CHARSET[w]).join('')}`;
}

/** The recipients of the keys in `text`, or why it is not an age identity (never quoting it). */
export function readIdentityText(text: string): { recipients: string[] } | { problem: string } {
  const recipients: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `line ${i + 1}`;
    if (!line.startsWith(PREFIX)) return { problem: `${where} is not an age identity: each line is an AGE-SECRET-KEY-1… key (as age-keygen writes it), a # comment or blank` };
    const data = line.slice(PREFIX.length);
    if (data.length !== 58) return { problem: `${where}: an AGE-SECRET-KEY-1… key has 58 characters after the prefix` };
    const values = [...data.toLowerCase()].map((c) => BECH32_CHARSET.indexOf(c));
    if (data !== data.toUpperCase() || values.some((v) => v < 0)) return { problem: `${where}: a character that cannot occur in an age key (Bech32, upper case)` };
    if (polymod([...expandHrp('age-secret-key-'), ...values]) !== 1) return { problem: `${where}: the key's checksum does not match: a character is wrong or missing (copy the key again)` };
    const secret = toBytes(values.slice(0, -6));
    if (!secret || secret.length !== 32) return { problem: `${where}: not a 32-byte X25519 key` };
    recipients.push(recipientOf(secret));
  }
  if (recipients.length === 0) return { problem: 'holds no age identity (an AGE-SECRET-KEY-1… line, as age-keygen writes)' };
  return { recipients };
}
