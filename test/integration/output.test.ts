// The agent's own output as a pipeline meets it: everything written reaches a slow reader before
// the process exits, a reader that leaves early is not an error, a failed write is; and under a
// Node.js too old for the agent, one line saying what is needed instead of a stack trace.
import { execa } from 'execa';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newBackupId } from '../../src/catalog/keys.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { agent, AGENT, sourceConnectionYaml, sourceEnv, sourceSql, storageYaml, testDir, uniqueName, writeConfig } from '../helpers.ts';

const COPIES = 400;
let dir: string;
let config: string;
let ids: string[];

/** Runs a shell pipeline with bash's pipefail, so the exit code is the agent's when it fails. */
function pipeline(script: string, env: Record<string, string> = {}) {
  return execa('bash', ['-c', `set -o pipefail; ${script}`], {
    reject: false,
    env: { ...sourceEnv(), ...env, NODE: process.execPath, AGENT, CONFIG: config },
    stdin: 'ignore',
  });
}

beforeAll(async () => {
  const schema = uniqueName('out').replace('-', '_');
  await sourceSql(sampleDataSql(schema, 50));
  dir = await testDir('output');
  const storage = await storageYaml('local');
  const store = /path: (.*)/.exec(storage)?.[1] ?? '';
  config = await writeConfig(dir, ['storage:', storage, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, ''].join('\n'));
  const backup = await agent(['--config', config, 'run-now', '--json'], sourceEnv());
  expect(backup.exitCode).toBe(0);
  const [manifest] = JSON.parse(backup.stdout) as Record<string, unknown>[];
  // A catalog of hundreds of backups: valid manifests, copies of a real one under new IDs.
  ids = [String(manifest?.['id'])];
  for (let i = 0; i < COPIES; i++) {
    const id = newBackupId(new Date(Date.UTC(2024, 0, 1, 0, 0, i)));
    ids.push(id);
    await mkdir(join(store, 'source', 'backups', id), { recursive: true });
    // Each with its own copy of the data, in its own folder (a manifest naming another backup's data is unreadable).
    const objects = (manifest?.['objects'] as { key: string }[]).map((o) => ({ ...o, key: o.key.replace(String(manifest?.['id']), id) }));
    for (const [j, o] of objects.entries()) await copyFile(join(store, (manifest?.['objects'] as { key: string }[])[j]?.key ?? ''), join(store, o.key));
    await writeFile(join(store, 'source', 'backups', id, 'manifest.json'), JSON.stringify({ ...manifest, id, objects }, null, 2));
  }
});

describe('output through a pipe', () => {
  it('list --json longer than the pipe buffer reaches a slow reader whole', async () => {
    const out = join(dir, 'list.json');
    const result = await pipeline(`"$NODE" "$AGENT" --config "$CONFIG" list --json | (sleep 1; cat) > "${out}"`);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const text = await readFile(out, 'utf8');
    expect(text.length).toBeGreaterThan(64 * 1024);
    const listed = JSON.parse(text) as { id: string }[];
    expect(listed.map((b) => b.id).sort()).toEqual([...ids].sort());
  });

  it('a reader that leaves early is no error: no stack trace, the exit code stays 0', async () => {
    const result = await pipeline(`"$NODE" "$AGENT" --config "$CONFIG" list --json | head -c 100 > /dev/null`);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('output that cannot be written is an error, exit 1', async () => {
    const result = await pipeline(`"$NODE" "$AGENT" --config "$CONFIG" list --json > /dev/full`);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('error: write output: ENOSPC');
  });
});

describe('an old Node.js', () => {
  // The machine's system Node (Debian's nodejs, 20.x) is the old Node this checks against; the
  // test fails rather than skips when it is missing.
  const OLD_NODE = '/usr/bin/node';

  it('is refused before anything loads: one line naming Node 24, exit 2', async () => {
    const version = await execa(OLD_NODE, ['--version']);
    const major = Number(/^v(\d+)\./.exec(version.stdout)?.[1]);
    expect(major).toBeLessThan(24);
    for (const args of [['--version'], ['--config', config, 'list', '--json']]) {
      const result = await execa(OLD_NODE, [AGENT, ...args], { reject: false, stdin: 'ignore' });
      expect(result.exitCode).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`error: backup-agent needs Node.js 24 or newer; this is Node.js ${version.stdout.slice(1)}`);
    }
  });
});
