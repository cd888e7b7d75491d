import { stringify } from 'yaml';
import { out, type CommandContext } from './context.ts';

/** `agent config validate`: the normalised configuration, secrets redacted. */
export function configValidate(ctx: CommandContext, options: { json?: boolean }): void {
  // Through JSON first: Secret.toJSON() redacts every secret.
  const plain: unknown = JSON.parse(JSON.stringify(ctx.config));
  out(options.json ? JSON.stringify(plain, null, 2) : stringify(plain).trimEnd());
  process.stderr.write(`configuration is valid (${ctx.config.databases.length} database${ctx.config.databases.length > 1 ? 's' : ''})\n`);
}
