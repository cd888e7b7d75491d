import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { fileForm } from '../config/file-form.ts';
import { interpolate } from '../config/interpolate.ts';
import { configSchema } from '../config/schema.ts';
import { out, type CommandContext } from './context.ts';

/**
 * `agent config validate`: the configuration is loaded (so every problem is reported with its
 * line and YAML path), then printed in its own file format with every default filled in and
 * secrets redacted: output that loads again as a configuration.
 */
export function configValidate(ctx: CommandContext, options: { json?: boolean }): void {
  // Already validated by CommandContext.load: this only recovers the file's own shape.
  const written: unknown = parse(readFileSync(ctx.configPath, 'utf8'), { maxAliasCount: 100 }) ?? {};
  const parsed = configSchema.parse(interpolate(written, process.env).value);
  const form = fileForm(written, parsed);
  out(options.json ? JSON.stringify(form, null, 2) : stringify(form).trimEnd());
  process.stderr.write(`configuration is valid (${ctx.config.databases.length} database${ctx.config.databases.length > 1 ? 's' : ''})\n`);
}
