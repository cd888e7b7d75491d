/**
 * Durations as written in the configuration: an integer and a unit, e.g. `30s`, `5m`, `1h`, `7d`,
 * `2w`, `1y`; several may be combined (`1h30m`). Pure.
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

const PART = /(\d+)(ms|s|m|h|d|w|y)/g;
const WHOLE = /^(?:\d+(?:ms|s|m|h|d|w|y))+$/;

/** Milliseconds of a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!WHOLE.test(compact)) return undefined;
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(PART)) total += Number(amount) * (UNIT_MS[unit ?? ''] ?? 0);
  return total;
}
