// The unit/integration split of vitest.config.ts holds: no file of the unit project (run in
// parallel, without the harness's servers) uses a server, directly or through a module of test/
// it imports. A unit file that starts needing one fails here, naming what it uses, instead of
// failing later on an undefined endpoint or on timings shared with the integration files.
import { glob, readFile } from 'node:fs/promises';
import { dirname, join, matchesGlob, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_TEST_FILES, INTEGRATION_FILES } from '../harness/projects.ts';
import { REPO } from '../helpers.ts';

/** What only the integration project provides: its servers, and the helpers that reach them. */
const SERVER_USE =
  /inject\(\s*'(?:mariadb|s3|gcs)'\s*\)|\b(?:storageYaml|sourceConnectionYaml|sourceEnv|sourceSql|freshServer|startSandbox|startS3Server|startGcsServer|createS3Bucket|startFaultProxy|startFaultSource|freshTarget)\b/g;

const RELATIVE_IMPORT = /\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/** Server uses in `file` and the test-support modules it imports (not src/, not helpers.ts, which only defines them). */
async function serverUses(file: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = await readFile(file, 'utf8');
  const uses = [...text.matchAll(SERVER_USE)].map((m) => `${relative(REPO, file)}: ${m[0]}`);
  for (const match of text.matchAll(RELATIVE_IMPORT)) {
    const target = resolve(dirname(file), match[1] ?? '');
    const inTest = relative(join(REPO, 'test'), target);
    if (inTest.startsWith('..') || inTest === 'helpers.ts' || !target.endsWith('.ts')) continue;
    uses.push(...(await serverUses(target, seen)));
  }
  return uses;
}

const isIntegration = (path: string): boolean => INTEGRATION_FILES.some((pattern) => matchesGlob(path, pattern));

async function unitFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const pattern of ALL_TEST_FILES) {
    for await (const path of glob(pattern, { cwd: REPO })) if (!isIntegration(path)) files.push(path);
  }
  return files.sort();
}

describe('test split', () => {
  it('no unit test uses a server of the integration project', async () => {
    const files = await unitFiles();
    // The split is real: most pure tests are unit files, and the integration files are not among them.
    expect(files).toContain('test/retention/policy.test.ts');
    expect(files).toContain('test/packaging/test-split.test.ts');
    expect(files.some((f) => f.startsWith('test/integration/'))).toBe(false);
    // This file names every server helper in its pattern: it is the one file not scanned.
    const scanned = files.filter((f) => f !== 'test/packaging/test-split.test.ts');
    const uses = (await Promise.all(scanned.map((f) => serverUses(join(REPO, f))))).flat();
    expect(uses).toEqual([]);
  });

  it('finds server uses, also through an imported test module', async () => {
    expect(await serverUses(join(REPO, 'test/storage/drivers.test.ts'))).toContainEqual(expect.stringMatching(/^test\/storage\/drivers\.test\.ts: inject\('s3'\)$/));
    expect(isIntegration('test/storage/drivers.test.ts')).toBe(true);
    // faults-*.test.ts reach s3rver through harness modules they import.
    const viaImports = await serverUses(join(REPO, 'test/integration/faults-store.test.ts'));
    expect(viaImports.some((use) => use.startsWith('test/harness/'))).toBe(true);
  });
});
