import { pino, type Logger } from 'pino';

/**
 * Redacted paths: secrets are Secret instances (they print as **redacted**) but the logger also
 * masks the usual fields in case a raw value slips into a log call.
 */
const REDACT = ['password', '*.password', 'secret_access_key', '*.secret_access_key', 'session_token', '*.session_token'];

/** JSON logs. The daemon logs to stdout; CLI commands log to stderr so stdout stays for output. */
export function createLogger(level: string, destination: 1 | 2): Logger {
  return pino(
    { level, base: { name: 'backup-agent' }, redact: { paths: REDACT, censor: '**redacted**' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: destination, sync: true }),
  );
}
