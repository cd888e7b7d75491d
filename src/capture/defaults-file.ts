import type { Connection } from '../config/normalize.ts';
import { removeSecretFiles, withSecretFile } from './secret-file.ts';

/**
 * Credentials reach MariaDB/MySQL tools through an option file in a private (0700) temp directory,
 * mode 0600, whose name is removed before the tool starts (it reads the file through the agent's
 * open descriptor): never argv (visible in `ps`), never the log, never left on disk.
 */

export type ClientFlavor = 'mariadb' | 'mysql';

/** Option-file values are double-quoted; backslash and quote are escaped. */
function quote(value: string): string {
  if (/[\n\r]/.test(value)) throw new Error('option values cannot contain line breaks');
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The option file. Client tools read `[client]`; mariadb-backup reads its own groups only (not
 * `[client]`), so it gets the same options under `[mariadb-backup]`: connection and TLS alike (a
 * physical backup must not fall back to plain text when the entry asks for TLS).
 */
export function renderDefaultsFile(connection: Connection, flavor: ClientFlavor, group: 'client' | 'mariadb-backup' = 'client'): string {
  const lines = [`[${group}]`, `user=${quote(connection.user)}`];
  if (connection.password) lines.push(`password=${quote(connection.password.reveal())}`);
  if (connection.socket) {
    lines.push(`socket=${quote(connection.socket)}`, 'protocol=SOCKET');
  } else {
    lines.push(`host=${quote(connection.host ?? '127.0.0.1')}`, `port=${connection.port}`, 'protocol=TCP');
  }
  const tls = connection.tls;
  if (tls && tls.mode !== 'disabled') {
    if (tls.ca_file) lines.push(`ssl-ca=${quote(tls.ca_file)}`);
    if (tls.cert_file) lines.push(`ssl-cert=${quote(tls.cert_file)}`);
    if (tls.key_file) lines.push(`ssl-key=${quote(tls.key_file)}`);
    if (flavor === 'mysql') {
      lines.push(`ssl-mode=${tls.mode.toUpperCase()}`);
    } else {
      // MariaDB clients have no separate "verify CA only" mode: verify_ca verifies the identity too.
      lines.push('ssl', tls.mode === 'required' ? 'disable-ssl-verify-server-cert' : 'ssl-verify-server-cert');
    }
  } else if (tls?.mode === 'disabled') {
    lines.push(flavor === 'mysql' ? 'ssl-mode=DISABLED' : 'skip-ssl');
  }
  return `${lines.join('\n')}\n`;
}

/** Removes every defaults file still in place, synchronously (a forced exit): see removeSecretFiles. */
export const removeDefaultsFiles = removeSecretFiles;

/**
 * Calls `fn` with the path of a fresh defaults file: 0600 in a private directory, its name removed
 * before the tool starts, read through the agent's open descriptor (capture/secret-file.ts).
 */
export async function withDefaultsFile<T>(
  connection: Connection,
  flavor: ClientFlavor,
  fn: (path: string) => Promise<T>,
  group: 'client' | 'mariadb-backup' = 'client',
): Promise<T> {
  return withSecretFile('client.cnf', renderDefaultsFile(connection, flavor, group), fn);
}
