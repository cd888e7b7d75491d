import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { AgentError } from '../errors.ts';
import type { ClientFlavor } from './defaults-file.ts';
import { runTool } from './tool-process.ts';

/** A located MariaDB/MySQL client tool and what it is. */
export interface ToolInfo {
  path: string;
  name: string;
  flavor: ClientFlavor;
  /** e.g. "10.11.19-MariaDB" or "8.0.36". */
  version: string;
  /** The first line of `--version`, recorded in manifests. */
  versionLine: string;
}

/** The first executable `name` in a directory of PATH, or undefined. */
export async function onPath(name: string, path = process.env['PATH'] ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Parses `mariadb-dump --version` / `mysqldump --version` / `mariadb --version`. */
export function parseToolVersion(line: string): { flavor: ClientFlavor; version: string } {
  // 10.x: "… Ver 10.19 Distrib 10.11.19-MariaDB, …"; 11.x: "mariadb-dump from 11.8.6-MariaDB, client 10.19 …";
  // mariadb-backup: "mariadb-backup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)"
  const distrib = /(?:Distrib| from| based on MariaDB server) ([0-9][^\s,]*)/.exec(line);
  if (distrib?.[1]) {
    return { flavor: /mariadb/i.test(distrib[1]) || /mariadb/i.test(line) ? 'mariadb' : 'mysql', version: distrib[1] };
  }
  const ver = /Ver ([0-9][^\s,]*)/.exec(line);
  return { flavor: /mariadb/i.test(line) ? 'mariadb' : 'mysql', version: ver?.[1] ?? 'unknown' };
}

const cache = new Map<string, Promise<ToolInfo>>();

/**
 * Finds a tool: the configured path, else the first of `candidates` on PATH. Cached per process.
 * `role` names the config key in errors.
 */
export function locateTool(configured: string | undefined, candidates: string[], role: string): Promise<ToolInfo> {
  const key = `${configured ?? ''}|${candidates.join(',')}`;
  let found = cache.get(key);
  if (!found) {
    found = (async () => {
      let path = configured;
      if (path === undefined) {
        for (const name of candidates) {
          path = await onPath(name);
          if (path) break;
        }
      }
      if (!path) {
        throw new AgentError('tool', `find ${candidates.join(' or ')}: not installed`, {
          hint: `install the MariaDB client tools (apt-get install mariadb-client) or set ${role} in the configuration`,
        });
      }
      let versionLine: string;
      try {
        versionLine = (await runTool(path, ['--version'])).split('\n')[0] ?? '';
      } catch (err) {
        throw new AgentError('tool', `run ${path} --version: ${(err as Error).message}`, {
          hint: `check ${role} in the configuration`,
          cause: err,
        });
      }
      const parsed = parseToolVersion(versionLine);
      return { path, name: path.split('/').pop() ?? path, ...parsed, versionLine };
    })();
    found.catch(() => cache.delete(key));
    cache.set(key, found);
  }
  return found;
}
