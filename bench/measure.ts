import { execa } from 'execa';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * /usr/bin/time's report: %M is the peak RSS of the tree's largest process; %U/%S the CPU time of
 * the process and all it waited for. CPU time does not swell when the machine is busy, as wall
 * time does on a shared 2-core machine, so it shows the agent's own cost more steadily.
 */
const TIME_FORMAT = 'RSS_KIB=%M CPU=%U+%S';
const cpuOf = (stderr: string): number => {
  const m = /CPU=([\d.]+)\+([\d.]+)/.exec(stderr);
  return m ? Number(m[1]) + Number(m[2]) : NaN;
};

/** One timed run: wall seconds, and the peak RSS of the process that matters (KiB). */
export interface Sample {
  seconds: number;
  rssKiB: number;
  /** User + system CPU seconds of the whole process tree (tools included, the server not). */
  cpuSeconds: number;
  /** CPU seconds of the agent's node process alone (agent rows). */
  agentCpuSeconds?: number;
  stdout: string;
}

/**
 * Runs a shell pipeline (a raw baseline) under /usr/bin/time: the RSS is that of the tree's
 * largest process, which for `mariadb-dump | zstd` is one of the tools.
 */
export async function timedShell(script: string, env: Record<string, string> = {}): Promise<Sample> {
  const started = process.hrtime.bigint();
  const result = await execa('/usr/bin/time', ['-f', TIME_FORMAT, 'bash', '-c', `set -euo pipefail; ${script}`], { env, reject: false, stdin: 'ignore' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitCode !== 0) throw new Error(`raw pipeline failed (${result.exitCode}): ${String(result.stderr).slice(-2000)}`);
  return { seconds, rssKiB: Number(/RSS_KIB=(\d+)/.exec(String(result.stderr))?.[1] ?? 0), cpuSeconds: cpuOf(String(result.stderr)), stdout: String(result.stdout) };
}

/**
 * Runs the agent (node with `nodeArgs`) and reports the node process's own peak RSS (VmHWM),
 * written at exit by the bench/hwm.mjs preload; `preload: false` for start-up timing.
 */
export async function timedAgent(dir: string, nodeArgs: string[], env: Record<string, string> = {}, preload = true): Promise<Sample> {
  const hwmFile = join(dir, `hwm-${process.pid}-${Date.now()}`);
  const hook = preload ? ['--import', new URL('./hwm.mjs', import.meta.url).pathname] : [];
  const started = process.hrtime.bigint();
  const result = await execa('/usr/bin/time', ['-f', TIME_FORMAT, process.execPath, ...hook, ...nodeArgs], { env: { ...env, BENCH_HWM_FILE: hwmFile }, reject: false, stdin: 'ignore' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitCode !== 0) throw new Error(`agent ${nodeArgs.slice(-6).join(' ')} failed (${result.exitCode}): ${String(result.stderr).slice(-2000)}`);
  const [rssKiB = 0, agentCpuSeconds] = preload ? (await readFile(hwmFile, 'utf8')).split(' ').map(Number) : [0];
  await rm(hwmFile, { force: true });
  return { seconds, rssKiB, cpuSeconds: cpuOf(String(result.stderr)), ...(agentCpuSeconds === undefined ? {} : { agentCpuSeconds }), stdout: String(result.stdout) };
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
