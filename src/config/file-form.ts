import { Secret } from './secret.ts';

/**
 * The configuration in its own file format, for `agent config validate`: what the file says, with
 * every default filled in, so that the output loads again as a configuration. Pure.
 *
 * - Values are printed as written: `${VAR}` references stay references (they name a secret, they
 *   are not one), `*_file` keys keep their path, durations keep the text the user wrote.
 * - A secret written literally in the file prints as `**redacted**` (a URL that carries one as
 *   `https://host/**redacted**`): it still loads, as a placeholder the user must replace.
 * - Defaults come from the validated configuration (`parsed`, the schema's output); durations,
 *   which the schema turns into milliseconds, are printed back in units.
 */

/** Keys whose schema value is a duration (`duration()` in schema.ts): defaults print as e.g. `5m`. */
const DURATION_KEYS = new Set(['segment_age', 'complete_mark_interval', 'shutdown_grace', 'orphan_grace', 'lock_ttl', 'timeout', 'jitter']);

const REDACTED = '**redacted**';

const UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/** Milliseconds as a duration the configuration accepts, largest units first: 90 000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let text = '';
  for (const [unit, size] of UNITS) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      text += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** A value the file did not give: the schema's default, printed in the file's syntax. */
function fromDefault(parsed: unknown, key: string | undefined): unknown {
  if (parsed instanceof Secret) return REDACTED;
  if (typeof parsed === 'number' && key !== undefined && DURATION_KEYS.has(key)) return formatDuration(parsed);
  if (Array.isArray(parsed)) return parsed.map((item) => fromDefault(item, undefined));
  if (isPlainObject(parsed)) {
    return Object.fromEntries(Object.entries(parsed).flatMap(([k, v]) => (v === undefined ? [] : [[k, fromDefault(v, k)]])));
  }
  return parsed;
}

/** `written`: the YAML document before `${VAR}` interpolation; `parsed`: the schema's output for it. */
export function fileForm(written: unknown, parsed: unknown, key?: string): unknown {
  if (written === undefined || written === null) return fromDefault(parsed, key);
  if (parsed instanceof Secret) {
    if (key?.endsWith('_file')) return written;
    if (typeof written !== 'string' || /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(written)) return written;
    // A URL that carries a token (webhooks, heartbeats) stays a URL, so the output still loads.
    return URL.canParse(written) ? `${new URL(written).origin}/${REDACTED}` : REDACTED;
  }
  if (Array.isArray(written) && Array.isArray(parsed)) return written.map((item, i) => fileForm(item, parsed[i]));
  if (isPlainObject(written) && isPlainObject(parsed)) {
    const keys = [...Object.keys(written), ...Object.keys(parsed).filter((k) => !(k in written))];
    return Object.fromEntries(
      keys.flatMap((k) => {
        const value = fileForm(written[k], parsed[k], k);
        return value === undefined ? [] : [[k, value]];
      }),
    );
  }
  return written;
}
