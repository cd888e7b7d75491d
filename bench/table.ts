import { median, type Sample } from './measure.ts';

/** A row of the bench table: a raw baseline or an agent variant, with what it is compared to. */
export interface Row {
  name: string;
  samples: Sample[];
  /** Bytes the row moves (uncompressed SQL or xbstream), for MB/s; 0 for start-up rows. */
  bytes: number;
  /** The raw row this one is a ratio of, by name. */
  baseline?: string;
  /** Target: a ratio (≤ baseline × ratio) or absolute seconds. */
  target?: { ratio: number } | { seconds: number };
  /** Whose RSS: 'agent' (node process alone, VmHWM) or 'tree' (largest process of a raw pipeline). */
  rss: 'agent' | 'tree' | 'none';
}

const RSS_TARGET_MIB = 128;

/** Markdown table: the raw rows stay in so a reader can recompute every ratio. */
export function renderTable(rows: readonly Row[]): string[] {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lines = [
    '| row | median s | range s | MB/s | CPU s (agent) | peak RSS MiB | ratio | CPU ratio | target | met |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of rows) {
    const secs = row.samples.map((s) => s.seconds);
    const m = median(secs);
    const range = `${Math.min(...secs).toFixed(2)}–${Math.max(...secs).toFixed(2)}`;
    const mbps = row.bytes > 0 ? (row.bytes / 1e6 / m).toFixed(0) : '';
    const rssMiB = Math.max(...row.samples.map((s) => s.rssKiB)) / 1024;
    const rss = row.rss === 'none' ? '' : `${rssMiB.toFixed(0)}${row.rss === 'tree' ? ' (tool)' : ''}`;
    const base = row.baseline ? byName.get(row.baseline) : undefined;
    const ratio = base ? m / median(base.samples.map((s) => s.seconds)) : undefined;
    const cpu = median(row.samples.map((s) => s.cpuSeconds));
    const own = row.rss === 'agent' ? ` (${median(row.samples.map((s) => s.agentCpuSeconds ?? NaN)).toFixed(2)})` : '';
    const cpuRatio = base ? cpu / median(base.samples.map((s) => s.cpuSeconds)) : undefined;
    let target = '';
    let met = '';
    if (row.target && 'ratio' in row.target && ratio !== undefined) {
      target = `≤ ${row.target.ratio.toFixed(2)}×`;
      met = ratio <= row.target.ratio ? 'yes' : 'no';
    } else if (row.target && 'seconds' in row.target) {
      target = `≤ ${row.target.seconds} s`;
      met = m <= row.target.seconds ? 'yes' : 'no';
    }
    if (row.rss === 'agent') {
      target += `${target ? ', ' : ''}RSS ≤ ${RSS_TARGET_MIB}`;
      met += `${met ? ', ' : ''}${rssMiB <= RSS_TARGET_MIB ? 'yes' : 'no'}`;
    }
    lines.push(`| ${row.name.replaceAll('|', '\\|')} | ${m.toFixed(2)} | ${range} | ${mbps} | ${cpu.toFixed(2)}${own} | ${rss} | ${ratio === undefined ? '' : ratio.toFixed(3)} | ${cpuRatio === undefined ? '' : cpuRatio.toFixed(3)} | ${target} | ${met} |`);
  }
  return lines;
}
