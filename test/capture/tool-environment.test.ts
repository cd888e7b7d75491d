// What child processes get from the agent's environment: the minimal set, never a secret. The
// pure picking function, and a real throwaway mariadbd (restore --verify, demo) read from /proc.
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { toolEnvironment } from '../../src/capture/tool-process.ts';
import { freshServer } from '../helpers.ts';

describe('toolEnvironment', () => {
  it('keeps PATH, HOME, user, locale, time zone and TMPDIR; drops everything else', () => {
    const env = {
      PATH: '/usr/bin',
      HOME: '/root',
      USER: 'backup',
      LOGNAME: 'backup',
      LANG: 'C.UTF-8',
      LANGUAGE: 'en',
      LC_ALL: 'C.UTF-8',
      LC_TIME: 'de_DE.UTF-8',
      TZ: 'Europe/Paris',
      TMPDIR: '/var/tmp',
      AWS_SECRET_ACCESS_KEY: 'x',
      AWS_ACCESS_KEY_ID: 'x',
      GOOGLE_APPLICATION_CREDENTIALS: '/k.json',
      MYSQL_PWD: 'x',
      MYSQL_HOST: 'elsewhere',
      MYSQL_TCP_PORT: '3307',
      SOURCE_DB_PASSWORD: 'x',
      AGENT_CONFIG: '/etc/agent.yaml',
      NODE_OPTIONS: '--require /tmp/x.js',
      LD_PRELOAD: '/tmp/x.so',
      UNSET: undefined,
    };
    expect(toolEnvironment(env)).toEqual({
      PATH: '/usr/bin',
      HOME: '/root',
      USER: 'backup',
      LOGNAME: 'backup',
      LANG: 'C.UTF-8',
      LANGUAGE: 'en',
      LC_ALL: 'C.UTF-8',
      LC_TIME: 'de_DE.UTF-8',
      TZ: 'Europe/Paris',
      TMPDIR: '/var/tmp',
    });
  });
});

describe('a throwaway server (restore --verify, demo)', () => {
  const previous = process.env['AWS_SECRET_ACCESS_KEY'];
  afterEach(() => {
    if (previous === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
    else process.env['AWS_SECRET_ACCESS_KEY'] = previous;
  });

  it('does not inherit the agent environment', async () => {
    process.env['AWS_SECRET_ACCESS_KEY'] = 'sandbox-secret-value';
    const server = await freshServer('sandbox-env');
    try {
      const environ = (await readFile(`/proc/${server.pid}/environ`, 'utf8')).split('\0');
      expect(environ.some((v) => v.startsWith('PATH='))).toBe(true);
      expect(environ.join('\n')).not.toContain('sandbox-secret-value');
    } finally {
      await server.stop();
    }
  });
});
