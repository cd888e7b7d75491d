import type { Compression, Encryption } from '../config/normalize.ts';
import { AGE_EXTENSION, locateAge } from './age-cli.ts';
import { compressionExtension } from './compress.ts';

/** How a stream is encrypted on its way to storage: the age CLI and the public recipients. */
export interface Encrypt {
  agePath: string;
  recipients: readonly string[];
}

/**
 * How a database's data objects are encrypted: the age CLI (located once, before a backup or
 * capture starts, so a missing `age` fails fast) and the recipients; undefined without an
 * encryption block.
 */
export async function encryptionOf(encryption: Encryption | undefined, configuredAge: string | undefined): Promise<Encrypt | undefined> {
  if (!encryption) return undefined;
  const age = await locateAge(configuredAge);
  return { agePath: age.path, recipients: encryption.recipients };
}

/** The extension of a data object: the compression's, then `.age` when encrypted (`.sql.zst.age`). */
export function dataExtension(compression: Compression, encrypt: Encrypt | undefined): string {
  return `${compressionExtension(compression.algorithm)}${encrypt ? AGE_EXTENSION : ''}`;
}
