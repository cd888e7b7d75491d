// Preloaded into the agent by the bench (node --import; plain JS, as a .ts preload would load
// Node's type stripper into the agent: +16 MiB RSS). On exit, writes the process's own peak RSS
// (VmHWM of /proc/self/status, KiB) and its own CPU seconds to BENCH_HWM_FILE. The node process
// alone: not its child tools (mariadb-dump, mariadb-backup, zstd), which /usr/bin/time mixes in.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env['BENCH_HWM_FILE'];
if (file) {
  process.on('exit', () => {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    const { user, system } = process.cpuUsage();
    writeFileSync(file, `${kib} ${(user + system) / 1e6}`);
  });
}
