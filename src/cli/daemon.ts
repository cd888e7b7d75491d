import { resolveConfigPath } from '../config/load.ts';
import { runDaemon } from '../daemon/daemon.ts';
import type { GlobalOptions } from './context.ts';

/** `agent daemon`: the long-running service. Logs JSON to stdout; exits 0 after a clean shutdown. */
export function daemon(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runDaemon({ configPath: resolveConfigPath(options.config, env), env, logFd: 1 });
}
