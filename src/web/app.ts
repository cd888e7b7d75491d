/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web dashboard: one page over the daemon's API, no framework. The token lives in session
 * storage and goes in the Authorization header of every call, never in a URL. Every element is
 * built with textContent (no HTML from data). Views: overview, backups, settings (#hash routes).
 */
import { ageLevel, apiErrorText, can, formatBytes, formatDuration, formatTime, scheduleBody, timelinePosition, timelineSpanDays, type Role } from './logic.ts';

const TOKEN_KEY = 'backup-agent-token';
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- API answers, read field by field

class ApiFailure extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

let me: { name: string; role: Role } | undefined;
let zone = 'UTC';
let databases: string[] = [];
let refreshTimer: number | undefined;

const $ = <T extends HTMLElement>(selector: string): T => {
  const found = document.querySelector<T>(selector);
  if (!found) throw new Error(`missing ${selector}`);
  return found;
};

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | ((e: Event) => void)> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) el.setAttribute(name, '');
    else if (value !== false) el.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child);
  return el;
}

async function api(method: string, path: string, body?: unknown): Promise<Json> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), cache: 'no-store' });
  const text = await response.text();
  let json: Json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    if (response.status === 401 && path !== '/v1/whoami') signOut(apiErrorText(response.status, json, response.statusText));
    throw new ApiFailure(response.status, apiErrorText(response.status, json, response.statusText));
  }
  return json;
}

/** An error where the user looks: the message as the API words it. */
function showError(where: HTMLElement, err: unknown): void {
  where.replaceChildren(h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err)));
}

function flash(message: string, kind: 'error' | 'info' = 'error'): void {
  const box = $('#flash');
  box.append(h('p', { class: kind, role: kind === 'error' ? 'alert' : 'status' }, message, h('button', { class: 'link', type: 'button', 'aria-label': 'dismiss', onclick: (e) => (e.currentTarget as HTMLElement).parentElement?.remove() }, '×')));
}

// ---- sign-in ------------------------------------------------------------------------------

function signOut(reason?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  me = undefined;
  window.clearInterval(refreshTimer);
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').replaceChildren(reason ? h('p', { class: 'error', role: 'alert' }, reason) : '');
}

async function signIn(token: string): Promise<void> {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    me = await api('GET', '/v1/whoami');
  } catch (err) {
    signOut(err instanceof Error ? err.message : String(err));
    return;
  }
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').textContent = `${me?.name} (${me?.role})`;
  // The overview refreshes itself while open; other views on demand (their forms would lose input).
  window.clearInterval(refreshTimer);
  refreshTimer = window.setInterval(() => {
    if (me && (location.hash === '' || location.hash === '#overview') && !document.hidden && !document.querySelector('dialog[open]')) void route();
  }, 15_000);
  await route();
}

// ---- jobs followed to their end -----------------------------------------------------------

/** Polls a job until it ends, showing its progress in the jobs panel; resolves with the final record. */
async function follow(job: Json, label: string): Promise<Json> {
  const list = $('#jobs');
  const line = h('li', { 'data-job': job.id, class: 'job running' });
  list.prepend(line);
  $('#jobs-panel').hidden = false;
  const draw = (j: Json) => {
    line.className = `job ${j.status}`;
    const open = j.status === 'scheduled' || j.status === 'running';
    line.replaceChildren(h('strong', {}, label), ` — ${j.status}`, j.bytes > 0 ? ` · ${formatBytes(j.bytes)}` : '', j.message ? ` · ${j.message}` : '', open ? cancelButton(j.id, line) : '');
  };
  draw(job);
  let current = job;
  while (current.status === 'scheduled' || current.status === 'running') {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      current = (await api('GET', `/v1/jobs/${encodeURIComponent(job.id)}`)).job;
    } catch (err) {
      line.append(h('span', { class: 'error' }, ` · ${(err as Error).message}`));
      return current;
    }
    draw(current);
  }
  void route();
  return current;
}

/** A Cancel button for a job that runs, for roles that may cancel; the API's answer is shown beside it. */
function cancelButton(id: string, where: HTMLElement): HTMLElement | string {
  if (!me || !can(me.role, 'cancel')) return '';
  const button: HTMLButtonElement = h('button', {
    type: 'button',
    class: 'link',
    'data-action': 'cancel-job',
    onclick: () => {
      button.disabled = true;
      api('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`).catch((err: unknown) => where.append(h('span', { class: 'error' }, ` · ${(err as Error).message}`)));
    },
  }, 'Cancel');
  return button;
}

async function manualBackup(database: string, type: string, out: HTMLElement): Promise<void> {
  try {
    const answer = await api('POST', '/v1/backups/schedules', { database, type, schedule: 'once' });
    await follow(answer.job, `Manual ${type} of ${database}`);
  } catch (err) {
    showError(out, err);
  }
}

// ---- overview -----------------------------------------------------------------------------

async function loadStatus(): Promise<Json> {
  const status = await api('GET', '/v1/status');
  zone = status.timezone;
  databases = status.databases.map((d: Json) => d.name);
  return status;
}

/** Backups over the last days or months (bar height: size), kept or dropped by retention, and why. */
function timeline(retention: Json, now: Date): HTMLElement {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 1000;
  const height = 100;
  const backups: Json[] = retention.backups;
  const kept = backups.filter((b) => b.keep);
  const dropped = backups.filter((b) => !b.keep);
  const span = timelineSpanDays(kept.map((b) => b.created_at), now);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'timeline');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `backups over the last ${span} days: ${kept.length} kept, ${dropped.length} dropped at the next prune`);
  const max = Math.max(1, ...backups.map((b) => b.size_bytes));
  for (let day = 0; day <= span; day += span <= 14 ? 1 : span <= 92 ? 7 : 30) {
    const tick = document.createElementNS(ns, 'line');
    const x = String(((1 - day / span) * (width - 4)).toFixed(1));
    for (const [k, v] of Object.entries({ x1: x, x2: x, y1: '0', y2: String(height), class: 'tick' })) tick.setAttribute(k, v);
    svg.append(tick);
  }
  for (const b of backups) {
    const at = timelinePosition(b.created_at, now, span);
    if (at === undefined) continue;
    const barHeight = Math.max(6, (Math.sqrt(b.size_bytes) / Math.sqrt(max)) * (height - 2));
    const rect = document.createElementNS(ns, 'rect');
    rect.setAttribute('x', (at * (width - 4)).toFixed(1));
    rect.setAttribute('y', (height - barHeight).toFixed(1));
    rect.setAttribute('width', '4');
    rect.setAttribute('height', barHeight.toFixed(1));
    rect.setAttribute('class', `bar ${b.keep ? 'keep' : 'drop'} ${b.type}`);
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${b.id} (${b.type}, ${formatBytes(b.size_bytes)}, ${formatTime(b.created_at, zone)}): ${b.keep ? `kept — ${b.reasons.join(', ')}` : 'dropped at the next prune'}${b.problem ? ` — ${b.problem}` : ''}`;
    rect.append(title);
    svg.append(rect);
  }
  const total = (list: Json[]) => formatBytes(list.reduce((sum, b) => sum + b.size_bytes, 0));
  return h(
    'figure',
    { class: 'timeline' },
    svg,
    h('div', { class: 'axis-labels' }, h('span', {}, formatTime(new Date(now.getTime() - span * 86_400_000).toISOString(), zone)), h('span', {}, 'now')),
    h(
      'figcaption',
      {},
      h('span', { class: 'key keep' }, `${kept.length} kept (${total(kept)})`),
      ' ',
      h('span', { class: 'key drop' }, `${dropped.length} dropped at the next prune (${total(dropped)})`),
    ),
    h(
      'details',
      { class: 'reasons' },
      h('summary', {}, 'What retention keeps, and why'),
      h(
        'ul',
        {},
        ...backups.map((b) =>
          h(
            'li',
            { 'data-id': b.id, class: b.keep ? 'keep' : 'drop' },
            h('span', { class: 'mono' }, b.id),
            ` ${b.type}, ${formatBytes(b.size_bytes)}: `,
            b.keep ? `kept (${b.reasons.join(', ')})` : 'dropped at the next prune',
            b.problem ? h('span', { class: 'error' }, ` — ${b.problem}`) : '',
          ),
        ),
      ),
    ),
  );
}

async function renderOverview(view: HTMLElement): Promise<void> {
  const status = await loadStatus();
  const now = new Date(status.now);
  const cards = status.databases.map((d: Json) => {
    const out = h('div', { class: 'out' });
    const rows = d.types.map((t: Json) => {
      const level = ageLevel(t.age_seconds, t.expected_interval_seconds);
      return h(
        'tr',
        { 'data-type': t.type },
        h('th', { scope: 'row' }, t.type),
        h(
          'td',
          { 'data-label': 'Last success' },
          t.last_success ? formatTime(t.last_success.completed_at, zone) : 'never',
          t.last_success
            ? h('span', { class: `age ${level}`, title: t.expected_interval_seconds ? `expected every ${formatDuration(t.expected_interval_seconds)}` : 'no schedule' }, `${formatDuration(t.age_seconds)} ago`)
            : level === 'red'
              ? h('span', { class: 'age red', title: 'scheduled, but no backup of this type in the store' }, 'no backup yet')
              : null,
        ),
        h('td', { 'data-label': 'Size' }, t.last_success ? formatBytes(t.last_success.size_bytes) : '—'),
        h('td', { 'data-label': 'Schedule' }, t.schedules.length > 0 ? t.schedules.join('; ') : 'none'),
        h('td', { 'data-label': 'Next run' }, formatTime(t.next_run, zone)),
        h('td', { 'data-label': 'Last failure' }, t.last_failure ? h('span', { class: 'error' }, `${formatTime(t.last_failure.at, zone)}: ${t.last_failure.error}`) : '—'),
      );
    });
    const running = d.running_jobs.map((j: Json) => {
      const line = h('li', { class: 'job running', 'data-job': j.id }, `${j.kind}${j.type ? ` ${j.type}` : ''} (${j.trigger}${j.requested_by ? `, by ${j.requested_by}` : ''}) ${j.status}`, j.bytes > 0 ? ` · ${formatBytes(j.bytes)}` : '', j.started_at ? ` · since ${formatTime(j.started_at, zone, true)} ` : ' ');
      line.append(cancelButton(j.id, line));
      return line;
    });
    const binlog = d.binlog
      ? h(
          'div',
          { class: 'binlog' },
          h('h4', {}, 'Binlog archiving'),
          h(
            'p',
            {},
            h('span', { class: `health ${d.binlog.health}` }, d.binlog.health),
            d.binlog.connected ? ' · connected' : ' · not connected',
            d.binlog.lag_seconds !== null ? ` · lag ${formatDuration(d.binlog.lag_seconds)}` : '',
            d.binlog.last_recoverable_at ? ` · recoverable to ${formatTime(d.binlog.last_recoverable_at, zone, true)}` : ' · nothing recoverable yet (no backup inside the archive)',
          ),
          d.binlog.error ? h('p', { class: 'error' }, d.binlog.error) : null,
          d.binlog.gaps && d.binlog.gaps.length > 0
            ? h('ul', { class: 'gaps' }, ...d.binlog.gaps.map((g: Json) => h('li', { class: 'error' }, `gap between ${g.after} and ${g.before}: ${g.reason}`)))
            : h('p', {}, 'No gaps in the archive.'),
        )
      : null;
    const typeSelect = h('select', { 'aria-label': `backup type for ${d.name}` }, ...['dump', 'full', 'incremental'].map((t) => h('option', { value: t }, t)));
    const actions =
      me && can(me.role, 'backup')
        ? h('div', { class: 'actions' }, typeSelect, h('button', { type: 'button', class: 'primary', 'data-action': 'manual-backup', onclick: () => void manualBackup(d.name, typeSelect.value, out) }, 'Manual backup'))
        : null;
    const chart = h('div', { class: 'chart' }, h('p', { class: 'muted' }, 'Loading the retention timeline…'));
    void api('GET', `/v1/retention?database=${encodeURIComponent(d.name)}`).then(
      (r) => chart.replaceChildren(h('h4', {}, 'Backups over time (bar height: size)'), r.backups.length > 0 ? timeline(r, now) : h('p', { class: 'muted' }, 'No backups yet.')),
      (err) => showError(chart, err),
    );
    return h(
      'section',
      { class: 'card', 'data-database': d.name },
      h('header', {}, h('h3', {}, d.name), actions),
      out,
      d.error ? h('p', { class: 'error', role: 'alert' }, d.error) : null,
      h('table', { class: 'types' }, h('thead', {}, h('tr', {}, ...['Type', 'Last success', 'Size', 'Schedule', 'Next run', 'Last failure'].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, ...rows)),
      running.length > 0 ? h('div', {}, h('h4', {}, 'Running'), h('ul', { class: 'running' }, ...running)) : null,
      binlog,
      chart,
    );
  });
  view.replaceChildren(h('h2', {}, 'Overview'), ...cards);
}

// ---- backups ------------------------------------------------------------------------------

const filters = { database: '', type: '', status: '', trigger: '', page: 1, page_size: 25 };

async function download(id: string, button: HTMLButtonElement, out: HTMLElement): Promise<void> {
  button.disabled = true;
  try {
    const token = sessionStorage.getItem(TOKEN_KEY) ?? '';
    const response = await fetch(`/v1/backups/${encodeURIComponent(id)}/download`, { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (!response.ok) {
      let body: unknown;
      try {
        body = await response.json();
      } catch {
        body = undefined;
      }
      throw new ApiFailure(response.status, apiErrorText(response.status, body, response.statusText));
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `${id}.bin`;
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showError(out, err);
  } finally {
    button.disabled = false;
  }
}

function restoreDialog(backup: Json): void {
  const dialog = $<HTMLDialogElement>('#restore-dialog');
  const out = h('div', { class: 'out' });
  const target = h('select', { name: 'target', id: 'restore-target' }, ...databases.map((n) => h('option', { value: n, ...(n === backup.database ? { selected: true } : {}) }, n)));
  const overwrite = h('input', { type: 'checkbox', name: 'overwrite', id: 'restore-overwrite' });
  const confirm = h('input', { type: 'text', name: 'confirm', id: 'restore-confirm', autocomplete: 'off', spellcheck: 'false' });
  const go = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Restore');
  confirm.addEventListener('input', () => (go.disabled = confirm.value.trim() !== backup.id));
  const form = h(
    'form',
    { method: 'dialog' },
    h('h3', {}, `Restore ${backup.id}`),
    h('p', {}, `A ${backup.type} of ${backup.database} taken ${formatTime(backup.created_at, zone, true)}.`),
    h('label', { for: 'restore-target' }, 'Into the server of'),
    target,
    h('label', { class: 'check' }, overwrite, ' Overwrite schemas that already hold data'),
    h('label', { for: 'restore-confirm' }, 'Type the backup ID to confirm'),
    confirm,
    out,
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'), go),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go.disabled = true;
    api('POST', '/v1/restores', { database: backup.database, backup_id: backup.id, target: target.value, overwrite: overwrite.checked }).then(
      (answer) => {
        dialog.close();
        void follow(answer.restore, `Restore of ${backup.id} into ${target.value}`);
      },
      (err) => {
        showError(out, err);
        go.disabled = false;
      },
    );
  });
  dialog.replaceChildren(form);
  dialog.showModal();
}

async function renderBackups(view: HTMLElement): Promise<void> {
  if (databases.length === 0) await loadStatus();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== '') q.set(k, String(v));
  const answer = await api('GET', `/v1/backups?${q}`);
  const out = h('div', { class: 'out' });
  const select = (name: keyof typeof filters, label: string, options: string[]) =>
    h(
      'label',
      {},
      label,
      h(
        'select',
        {
          name,
          onchange: (e) => {
            (filters as Record<string, string | number>)[name] = (e.target as HTMLSelectElement).value;
            filters.page = 1;
            void route();
          },
        },
        h('option', { value: '' }, 'all'),
        ...options.map((o) => h('option', { value: o, ...(String(filters[name]) === o ? { selected: true } : {}) }, o)),
      ),
    );
  const admin = me !== undefined && can(me.role, 'download');
  const rows = answer.backups.map((b: Json) => {
    const actions = h('td', { class: 'row-actions' });
    if (admin) {
      const dl: HTMLButtonElement = h('button', { type: 'button', 'data-action': 'download', onclick: () => void download(b.id, dl, out) }, 'Download');
      actions.append(dl);
      if (b.type === 'dump' && can(me!.role, 'restore')) actions.append(h('button', { type: 'button', class: 'danger', 'data-action': 'restore', onclick: () => restoreDialog(b) }, 'Restore'));
    }
    return h(
      'tr',
      { 'data-id': b.id },
      h('td', { 'data-label': 'ID', class: 'mono' }, b.id),
      h('td', { 'data-label': 'Database' }, b.database),
      h('td', { 'data-label': 'Type' }, b.type),
      h('td', { 'data-label': 'Trigger' }, b.trigger),
      h('td', { 'data-label': 'Created' }, formatTime(b.created_at, zone, true)),
      h('td', { 'data-label': 'Size', class: 'num' }, formatBytes(b.size_bytes)),
      h('td', { 'data-label': 'Status' }, h('span', { class: `status ${b.status === 'completed' ? 'ok' : 'red'}`, title: b.problem ?? '' }, b.status)),
      h('td', { 'data-label': 'Parent', class: 'mono' }, b.parent ?? '—'),
      h(
        'td',
        { 'data-label': 'Verified' },
        b.verified ? h('span', { class: `status ${b.verified.ok ? 'ok' : 'red'}`, title: formatTime(b.verified.at, zone, true) }, `${b.verified.ok ? '' : 'FAILED '}${b.verified.depth}`) : '—',
      ),
      actions,
    );
  });
  const pages = Math.max(1, answer.pages_count);
  const pager = h(
    'nav',
    { class: 'pager', 'aria-label': 'pages' },
    h('button', { type: 'button', disabled: filters.page <= 1, onclick: () => ((filters.page -= 1), void route()) }, '← Newer'),
    ` Page ${answer.page} of ${pages} · ${answer.backups_count} backups `,
    h('button', { type: 'button', disabled: filters.page >= pages, onclick: () => ((filters.page += 1), void route()) }, 'Older →'),
  );
  view.replaceChildren(
    h('h2', {}, 'Backups'),
    h('div', { class: 'filters' }, select('database', 'Database', databases), select('type', 'Type', ['dump', 'full', 'incremental']), select('status', 'Status', ['completed', 'data missing', 'data unknown']), select('trigger', 'Trigger', ['manual', 'periodic'])),
    out,
    h(
      'table',
      { class: 'backups' },
      h('thead', {}, h('tr', {}, ...['ID', 'Database', 'Type', 'Trigger', `Created (${zone})`, 'Size', 'Status', 'Parent', 'Verified', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows),
    ),
    rows.length === 0 ? h('p', { class: 'muted' }, 'No backups match.') : '',
    pager,
  );
}

// ---- settings -----------------------------------------------------------------------------

function scheduleForm(out: HTMLElement, editing?: Json): HTMLFormElement {
  const database = h('select', { name: 'database', ...(editing ? { disabled: true } : {}) }, ...databases.map((n) => h('option', { value: n, ...(editing?.database === n ? { selected: true } : {}) }, n)));
  const type = h('select', { name: 'type' }, ...['dump', 'full', 'incremental'].map((t) => h('option', { value: t, ...(editing?.type === t ? { selected: true } : {}) }, t)));
  const isCron = editing !== undefined && !/^daily at /.test(editing.description);
  const mode = h('select', { name: 'mode' }, h('option', { value: 'daily', ...(isCron ? {} : { selected: true }) }, 'daily at'), h('option', { value: 'cron', ...(isCron ? { selected: true } : {}) }, 'cron'));
  const at = h('input', { name: 'at', type: 'time', value: editing && !isCron ? (/daily at (\d\d:\d\d)/.exec(editing.description)?.[1] ?? '03:00') : '03:00' });
  const cron = h('input', { name: 'cron', type: 'text', placeholder: '0 */6 * * *', value: isCron ? editing.cron : '' });
  const timezone = h('input', { name: 'timezone', type: 'text', placeholder: zone, value: editing?.timezone ?? zone });
  const sync = () => {
    at.parentElement!.hidden = mode.value !== 'daily';
    cron.parentElement!.hidden = mode.value !== 'cron';
  };
  mode.addEventListener('change', sync);
  const form = h(
    'form',
    { class: 'schedule-form', method: 'post' },
    h('h3', {}, editing ? `Change ${editing.id}` : 'Add a schedule'),
    h('label', {}, 'Database', database),
    h('label', {}, 'Type', type),
    h('label', {}, 'Runs', mode),
    h('label', {}, 'At', at),
    h('label', {}, 'Cron', cron),
    h('label', {}, 'Time zone', timezone),
    h('div', { class: 'actions' }, editing ? h('button', { type: 'button', onclick: () => void route() }, 'Cancel') : null, h('button', { type: 'submit', class: 'primary' }, editing ? 'Save schedule' : 'Add schedule')),
  );
  queueMicrotask(sync);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const schedule = scheduleBody({ mode: mode.value as 'daily' | 'cron', at: at.value, cron: cron.value, timezone: timezone.value });
    const call = editing
      ? api('PATCH', `/v1/backups/schedules/${encodeURIComponent(editing.id)}`, { type: type.value, schedule })
      : api('POST', '/v1/backups/schedules', { database: database.value, type: type.value, schedule });
    call.then(
      (answer) => {
        flash(`Saved schedule ${answer.schedule.id}: ${answer.schedule.description}`, 'info');
        void route();
      },
      (err) => showError(out, err),
    );
  });
  return form;
}

async function renderSettings(view: HTMLElement): Promise<void> {
  if (databases.length === 0) await loadStatus();
  const { schedules } = await api('GET', '/v1/backups/schedules');
  const out = h('div', { class: 'out' });
  const admin = me !== undefined && can(me.role, 'schedule');
  const editor = h('div', {});
  const rows = schedules.map((s: Json) =>
    h(
      'tr',
      { 'data-schedule': s.id },
      h('td', { 'data-label': 'Database' }, s.database),
      h('td', { 'data-label': 'Type' }, s.type),
      h('td', { 'data-label': 'Schedule' }, s.description),
      h('td', { 'data-label': 'Next run' }, formatTime(s.next_run, zone)),
      h('td', { 'data-label': 'Source' }, s.source === 'file' ? h('span', { class: 'badge', title: 'change it in the configuration file and reload (SIGHUP)' }, 'configuration file (read-only)') : `API, by ${s.created_by ?? '?'}`),
      h(
        'td',
        { class: 'row-actions' },
        admin && !s.read_only ? h('button', { type: 'button', 'data-action': 'edit-schedule', onclick: () => editor.replaceChildren(scheduleForm(out, s)) }, 'Edit') : null,
        admin && !s.read_only
          ? h(
              'button',
              {
                type: 'button',
                class: 'danger',
                'data-action': 'delete-schedule',
                onclick: () => {
                  if (!window.confirm(`Remove schedule ${s.id} (${s.description})?`)) return;
                  api('DELETE', `/v1/backups/schedules/${encodeURIComponent(s.id)}`).then(() => void route(), (err) => showError(out, err));
                },
              },
              'Delete',
            )
          : null,
      ),
    ),
  );
  if (admin) editor.replaceChildren(scheduleForm(out));
  view.replaceChildren(
    h('h2', {}, 'Backup settings'),
    h('p', { class: 'muted' }, `Periodic backups per database and type. Times are read in the time zone given (the daemon's is ${zone}).`),
    out,
    h('table', { class: 'schedules' }, h('thead', {}, h('tr', {}, ...['Database', 'Type', 'Schedule', 'Next run', 'Source', ''].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, ...rows)),
    admin ? editor : h('p', { class: 'muted' }, 'Schedules are changed by admins.'),
  );
}

// ---- routing ------------------------------------------------------------------------------

const VIEWS: Record<string, (view: HTMLElement) => Promise<void>> = { overview: renderOverview, backups: renderBackups, settings: renderSettings };

let routing = Promise.resolve();
function route(): Promise<void> {
  routing = routing.then(async () => {
    if (!me) return;
    const name = location.hash.replace(/^#/, '') || 'overview';
    const render = VIEWS[name] ?? renderOverview;
    for (const link of document.querySelectorAll<HTMLAnchorElement>('nav.main a')) link.setAttribute('aria-current', link.hash === `#${name}` ? 'page' : 'false');
    const view = $('#view');
    view.setAttribute('data-view', name);
    try {
      await render(view);
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) return;
      showError(view, err);
    }
  });
  return routing;
}

function start(): void {
  $('#signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('#token');
    const token = input.value.trim();
    input.value = '';
    if (token === '') return;
    void signIn(token);
  });
  $('#signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => void route());
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) void signIn(token);
  else signOut();
}

start();
