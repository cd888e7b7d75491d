import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { cronProblem, toSchedule } from '../config/schedule.ts';
import { isValidTimeZone } from '../config/normalize.ts';
import type { BackupType } from '../domain/backup.ts';
import type { Schedule } from '../domain/schedule.ts';
import { AgentError, messageOf } from '../errors.ts';

/**
 * Backup schedules made through the API: kept in one JSON file in the agent's state directory,
 * replaced atomically (temp file, fsync, rename, fsync of the directory), so a crash leaves the
 * old list or the new one. They survive restarts and reloads; the file's own schedules stay in the
 * configuration and are read-only through the API.
 */

export interface ApiSchedule {
  id: string;
  database: string;
  type: BackupType;
  /** Exactly one of `cron` and `at`. */
  cron?: string | undefined;
  at?: string | undefined;
  timezone?: string | undefined;
  createdAt: string;
  createdBy: string;
  updatedAt?: string | undefined;
}

/** What a request may say of a recurring schedule: a cron string, or `{at}` / `{cron}` with a time zone. */
export type ScheduleInput = string | { at?: string | undefined; cron?: string | undefined; timezone?: string | undefined };

const FORMAT = 'backup-agent/api-schedules';

/**
 * The agent's state directory: systemd's StateDirectory, else $XDG_STATE_HOME/backup-agent, else
 * ~/.local/state/backup-agent.
 */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env['STATE_DIRECTORY']?.split(':')[0];
  if (state) return state;
  const xdg = env['XDG_STATE_HOME'];
  return xdg ? join(xdg, 'backup-agent') : join(env['HOME'] ?? homedir(), '.local', 'state', 'backup-agent');
}

/** The schedule fields of a request as stored, or what is wrong with them (the field named). */
export function readScheduleInput(input: ScheduleInput, field: string): { cron?: string; at?: string; timezone?: string } {
  const parts = typeof input === 'string' ? { cron: input } : input;
  if ((parts.cron === undefined) === (parts.at === undefined)) throw new AgentError('usage', `${field}: give a cron expression, or {at: "HH:MM"}`);
  if (parts.timezone !== undefined && !isValidTimeZone(parts.timezone)) {
    throw new AgentError('usage', `${field}.timezone: unknown time zone "${parts.timezone}" (expected an IANA name like Europe/Paris)`);
  }
  if (parts.at !== undefined && !/^([01]\d|2[0-3]):[0-5]\d$/.test(parts.at)) throw new AgentError('usage', `${field}.at: must be a 24-hour time HH:MM`);
  if (parts.cron !== undefined) {
    const problem = cronProblem(parts.cron, parts.timezone ?? 'UTC');
    if (problem) throw new AgentError('usage', `${field}: ${problem}`);
  }
  return { ...(parts.cron === undefined ? {} : { cron: parts.cron }), ...(parts.at === undefined ? {} : { at: parts.at }), ...(parts.timezone === undefined ? {} : { timezone: parts.timezone }) };
}

/** The schedule the scheduler runs for a stored one. */
export function toRunSchedule(entry: ApiSchedule, defaultTimezone: string): Schedule {
  return toSchedule({ type: entry.type, cron: entry.cron, at: entry.at, timezone: entry.timezone }, defaultTimezone);
}

export const newScheduleId = () => `sch-${randomBytes(6).toString('hex')}`;

export class ApiScheduleStore {
  readonly file: string;
  #entries: ApiSchedule[] = [];
  /** Writes one at a time, in order. */
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  /** Reads the file; a missing one is an empty list, an unreadable one an error (the daemon must not silently drop schedules). */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new AgentError('config', `read the API schedules ${this.file}: ${messageOf(err)}`);
    }
    try {
      const parsed = JSON.parse(text) as { format?: string; schedules?: ApiSchedule[] };
      if (parsed.format !== FORMAT || !Array.isArray(parsed.schedules)) throw new Error(`not a ${FORMAT} file`);
      this.#entries = parsed.schedules;
    } catch (err) {
      throw new AgentError('config', `read the API schedules ${this.file}: ${messageOf(err)}`, { hint: 'fix or move the file aside; the daemon does not start without the schedules it was given' });
    }
  }

  list(): ApiSchedule[] {
    return structuredClone(this.#entries);
  }

  get(id: string): ApiSchedule | undefined {
    return structuredClone(this.#entries.find((e) => e.id === id));
  }

  /** Replaces the list and writes it; the list in memory changes only once the file has. */
  async replace(next: ApiSchedule[]): Promise<void> {
    const write = this.#writing.then(() => this.#write(next));
    this.#writing = write.catch(() => undefined);
    await write;
    this.#entries = structuredClone(next);
  }

  async #write(entries: ApiSchedule[]): Promise<void> {
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify({ format: FORMAT, version: 1, schedules: entries }, null, 2)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.file);
      const directory = await open(dir, 'r');
      try {
        await directory.sync();
      } finally {
        await directory.close();
      }
    } catch (err) {
      await rm(temp, { force: true });
      throw new AgentError('storage', `write the API schedules ${this.file}: ${messageOf(err)}`, { cause: err });
    }
  }
}
