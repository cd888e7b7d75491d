import type { Duplex } from 'node:stream';
import { onPath } from '../capture/tools.ts';
import { runTool } from '../capture/tool-process.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createToolStage } from './tool-stage.ts';

/**
 * age encryption (https://age-encryption.org/v1) by the stock `age` CLI as a child process, so
 * every archive opens with `age -d` and nothing of ours, and no crypto is written here.
 *
 * Chosen by measurement (1 GiB of incompressible bytes, as a zstd stream is, on the 2-core
 * machine): the age 1.1.1 CLI encrypted at ~800 MiB/s (1.25–1.38 s wall, 5 MiB RSS, on another
 * core); the npm age-encryption 0.3.1 library at 51–65 MiB/s on the agent's main thread with
 * 150 MiB RSS. The CLI keeps the pipeline's pace and fixed memory; the library would be its
 * bottleneck and stall the event loop.
 *
 * Secrets never go into argv: encryption needs only public recipients (`-r age1…`); decryption
 * gets the path of the identity file the user configured (`-i PATH`: a path is not a secret), and
 * age reads the key from it. age 1.1 reads a passphrase only from a terminal, so the passphrase mode
 * (age's scrypt recipient) uses the library in a worker thread instead: age-passphrase.ts.
 */

/** The name age's errors carry (ToolError.tool), whatever binary tools.age names. */
export const AGE_TOOL = 'age';

/** The extension of an encrypted object, after the compression's: `dump.sql.zst.age`. */
export const AGE_EXTENSION = '.age';

/** What age prints when none of the identities opens the file. */
const NO_MATCH = /no identity matched any of the recipients/i;

export function ageEncryptArgs(recipients: readonly string[]): string[] {
  return ['--encrypt', ...recipients.flatMap((r) => ['--recipient', r])];
}

export function ageDecryptArgs(identityFile: string): string[] {
  return ['--decrypt', '--identity', identityFile];
}

/** A located age CLI: its path and the version it reports. */
export interface AgeTool {
  path: string;
  version: string;
}

const located = new Map<string, Promise<AgeTool>>();

/** The configured `tools.age`, else `age` on PATH; its `--version` run once per process. */
export function locateAge(configured: string | undefined): Promise<AgeTool> {
  const key = configured ?? '';
  let found = located.get(key);
  if (!found) {
    found = (async () => {
      const path = configured ?? (await onPath('age'));
      if (!path) {
        throw new AgentError('tool', 'find age: not installed, and encryption is configured', {
          hint: 'install the age CLI (apt-get install age) or set tools.age in the configuration',
        });
      }
      let version: string;
      try {
        version = (await runTool(path, ['--version'])).trim().split('\n')[0] ?? '';
      } catch (err) {
        throw new AgentError('tool', `run ${path} --version: ${messageOf(err)}`, { hint: 'check tools.age in the configuration', cause: err });
      }
      return { path, version };
    })();
    found.catch(() => located.delete(key));
    located.set(key, found);
  }
  return found;
}

/** A stage that encrypts what passes to `recipients` (public keys only: the agent cannot decrypt it). */
export function createAgeEncryptor(path: string, recipients: readonly string[], signal?: AbortSignal): Duplex {
  if (recipients.length === 0) throw new Error('encrypt: no recipients');
  return createToolStage(path, ageEncryptArgs(recipients), signal, AGE_TOOL);
}

/**
 * A stage that decrypts with the identity in `identityFile`. age authenticates the header before
 * it writes a byte, and each 64 KiB chunk before it writes that chunk; a truncated or altered
 * stream fails the stage (age exits 1) at the damaged chunk.
 */
export function createAgeDecryptor(path: string, identityFile: string, signal?: AbortSignal): Duplex {
  return createToolStage(path, ageDecryptArgs(identityFile), signal, AGE_TOOL);
}

/** Whether an age failure (its stderr) says the identity does not open the file. */
export function isWrongIdentity(stderr: string): boolean {
  return NO_MATCH.test(stderr);
}

/** age's error, without its "report unexpected or unhelpful errors at …" footer: `age: error: …`. */
export function ageMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/report unexpected or unhelpful errors/.test(line))
    .join('; ');
}
