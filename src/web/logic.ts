/**
 * The dashboard's pure decisions, kept out of the DOM code so unit tests run them: how late a
 * backup is against its schedule, how sizes, ages and times read, which controls a role is
 * offered, and how a schedule form becomes an API body. No DOM, no clock, no fetch.
 */

export type Role = 'viewer' | 'operator' | 'admin';
export type Action = 'backup' | 'cancel' | 'schedule' | 'restore' | 'download';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
/** The least role of each action, as the API enforces it (the page only hides what it would refuse). */
const NEEDS: Record<Action, Role> = { backup: 'operator', cancel: 'operator', schedule: 'admin', restore: 'admin', download: 'admin' };

export function can(role: Role, action: Action): boolean {
  return RANK[role] >= RANK[NEEDS[action]];
}

export type AgeLevel = 'ok' | 'amber' | 'red' | 'none';

/**
 * How late the newest backup is: ok within the expected interval (with 10 % slack for the run
 * itself and jitter), amber up to twice the interval (one run missed), red beyond or when a
 * scheduled type has no backup at all; `none` without a schedule to hold it to.
 */
export function ageLevel(ageSeconds: number | null, intervalSeconds: number | null): AgeLevel {
  if (intervalSeconds === null || intervalSeconds <= 0) return 'none';
  if (ageSeconds === null) return 'red';
  if (ageSeconds <= intervalSeconds * 1.1) return 'ok';
  if (ageSeconds <= intervalSeconds * 2) return 'amber';
  return 'red';
}

/** 0 B, 1023 B, 1.5 KiB, 20 MiB, 3.25 GiB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${text.includes('.') ? text.replace(/\.?0+$/, '') : text} ${units[unit]}`;
}

/** 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** An ISO instant in the configured zone: `2026-12-01 10:05 CET`, seconds when asked. */
export function formatTime(iso: string | null | undefined, timeZone: string, seconds = false): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(date);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}${seconds ? `:${get('second')}` : ''} ${get('timeZoneName')}`;
}

/** An API error as the API words it: `{ error, hint? }`, or the status line when the body is not one. */
export function apiErrorText(status: number, body: unknown, statusText = ''): string {
  if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') {
    const { error, hint } = body as { error: string; hint?: unknown };
    return typeof hint === 'string' && hint !== '' ? `${error} (${hint})` : error;
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
}

export interface ScheduleForm {
  mode: 'daily' | 'cron';
  at: string;
  cron: string;
  timezone: string;
}

/** The `schedule` of a POST/PATCH body from the settings form; an empty time zone leaves it to the daemon's. */
export function scheduleBody(form: ScheduleForm): { at: string; timezone?: string } | { cron: string; timezone?: string } {
  const zone = form.timezone.trim();
  const base = form.mode === 'daily' ? { at: form.at.trim() } : { cron: form.cron.trim() };
  return zone === '' ? base : { ...base, timezone: zone };
}

/** Where a backup sits on the timeline: 0 (oldest shown) … 1 (now); undefined when outside it. */
export function timelinePosition(createdAt: string, now: Date, spanDays: number): number | undefined {
  const age = now.getTime() - new Date(createdAt).getTime();
  const span = spanDays * 86_400_000;
  if (age < 0 || age > span) return undefined;
  return 1 - age / span;
}

/** The timeline's span: enough days to show the oldest kept backup, from a week up to a year. */
export function timelineSpanDays(createdAts: readonly string[], now: Date): number {
  const oldest = Math.min(...createdAts.map((c) => new Date(c).getTime()), now.getTime());
  const days = Math.ceil((now.getTime() - oldest) / 86_400_000) + 1;
  for (const span of [7, 14, 31, 92, 183, 366]) if (days <= span) return span;
  return 366;
}
