// What child processes get from the agent's environment: the minimal set, never a secret. The
// pure picking function, and a real throwaway mariadbd (restore --verify, demo) read from /proc.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toolEnvironment } from '../../src/capture/tool-process.ts';
import { startSandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort } from '../harness/child-process.ts';
import { freshServer, testDir } from '../helpers.ts';

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
  const saved = { AWS_SECRET_ACCESS_KEY: process.env['AWS_SECRET_ACCESS_KEY'], PATH: process.env['PATH'] };
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
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

  it('gets its SQL on stdin, so the password of the user it creates is never in argv', async () => {
    const dir = await testDir('sandbox-argv');
    // A `mariadb` first on PATH that records its argv, then runs the real client.
    await writeFile(join(dir, 'mariadb'), `#!/bin/sh\nprintf '%s\\n' "$@" >>'${dir}/argv'\nexec /usr/bin/mariadb "$@"\n`, { mode: 0o755 });
    process.env['PATH'] = `${dir}:${saved.PATH ?? ''}`;
    const server = await startSandbox({ dir: join(dir, 'server'), port: await freePort(), agentPassword: 'argv-secret-pw' });
    try {
      const argv = await readFile(join(dir, 'argv'), 'utf8');
      expect(argv).toMatch(/^--defaults-file=/m);
      expect(argv).not.toContain('argv-secret-pw');
    } finally {
      await server.stop();
    }
  });
});
