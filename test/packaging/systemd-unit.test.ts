// systemd/backup-agent.service must pass `systemd-analyze verify`. The unit names /usr/bin/agent,
// which this machine does not have installed, so the check runs on a copy whose ExecStart points
// at the built agent; everything else is the shipped unit, byte for byte.
import { execa } from 'execa';
import { chmod, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT, REPO, testDir } from '../helpers.ts';

describe('systemd unit', () => {
  it('passes systemd-analyze verify', async () => {
    const dir = await testDir('systemd');
    const unit = await readFile(join(REPO, 'systemd', 'backup-agent.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/agent daemon$/m);
    const bin = join(dir, 'agent');
    await copyFile(AGENT, bin);
    await chmod(bin, 0o755);
    const path = join(dir, 'backup-agent.service');
    await writeFile(path, unit.replace('ExecStart=/usr/bin/agent daemon', `ExecStart=${bin} daemon`));
    const result = await execa('systemd-analyze', ['verify', path], { reject: false });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it('runs the daemon as a dedicated user, hardened, restarting on failure', async () => {
    const unit = await readFile(join(REPO, 'systemd', 'backup-agent.service'), 'utf8');
    for (const line of ['User=backup-agent', 'Restart=on-failure', 'ProtectSystem=strict', 'PrivateTmp=true', 'NoNewPrivileges=true', 'ReadWritePaths=/var/lib/backup-agent']) {
      expect(unit).toMatch(new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    }
  });
});
