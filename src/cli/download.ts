import { resolve } from 'node:path';
import { findBackup } from '../catalog/catalog.ts';
import { isPassphraseRecord } from '../catalog/manifest.ts';
import type { Encryption } from '../config/normalize.ts';
import { AgentError } from '../errors.ts';
import { dataObject, downloadBackup } from '../restore/download.ts';
import { formatBytes, formatTime } from '../ui/format.ts';
import { createProgress } from '../ui/progress.ts';
import { out, type CommandContext } from './context.ts';
import { archiveSource, fromFlags, type FromCliOptions } from './from-location.ts';

export interface DownloadCliOptions extends FromCliOptions {
  database?: string;
  backup?: string;
  output?: string;
  decrypt?: boolean;
  identity?: string;
  passphraseFile?: string;
}

/** `agent download`: one backup's data file, still compressed (decrypted with --decrypt), verified against its manifest. */
export async function download(ctx: CommandContext, options: DownloadCliOptions): Promise<void> {
  const from = fromFlags(options);
  const database = from ? await archiveSource(ctx, from, options.database) : ctx.singleDatabase(options.database);
  const storage = await ctx.storage(database);
  const manifest = await findBackup(storage, database.name, options.backup, undefined, await ctx.catalog(database));
  if (options.backup === undefined) {
    process.stderr.write(
      `Selected the most recent successful backup: ${manifest.id} (${formatTime(manifest.startedAt, ctx.config.timezone)})\n`,
    );
  }
  const object = dataObject(manifest);
  const progress = createProgress('download', object.sizeBytes);
  try {
    for (const [flag, set] of [
      ['--identity', options.identity],
      ['--passphrase-file', options.passphraseFile],
    ] as const) {
      if (set !== undefined && !options.decrypt) throw new AgentError('usage', `${flag} needs --decrypt: without it the backup is written as stored`, { hint: `add --decrypt, or drop ${flag}` });
    }
    const decrypt = options.decrypt
      ? { agePath: ctx.config.tools.age, identityFile: options.identity ?? database.encryption?.identityFile, passphraseFile: options.passphraseFile ?? database.encryption?.passphrase?.file }
      : undefined;
    const result = await downloadBackup(storage, manifest, resolve(options.output ?? '.'), { onProgress: progress.update, signal: ctx.signal, ...(decrypt ? { decrypt } : {}) });
    progress.update(object.sizeBytes);
    progress.stop();
    const opens = manifest.encryption && isPassphraseRecord(manifest.encryption) ? 'age -d (it asks for the passphrase)' : 'age -d -i KEY';
    const how = manifest.encryption ? (decrypt ? ', decrypted' : `, encrypted with age: open it with ${opens}, or download with --decrypt`) : '';
    out(`${result.path} (${formatBytes(result.sizeBytes)}, SHA-256 verified${how})`);
  } finally {
    progress.stop();
  }
}
