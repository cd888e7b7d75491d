// The layering of src/, read from the import statements themselves: the leaf types import nothing
// of ours, config imports only itself, the leaf types and errors.ts (never catalog, retention,
// scheduler or daemon), the scheduler never imports the daemon, and the engines (restore, backup,
// catalog, …) never import a command, the terminal UI or the daemon, so the daemon and an API can
// call them as the CLI does. A new upward import fails here with the file and the import.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers.ts';

const SRC = join(REPO, 'src');

interface Edge {
  /** Both relative to src/, e.g. `config/normalize.ts` → `domain/backup.ts`. */
  from: string;
  to: string;
}

/** Static `import … from`, `export … from`, side-effect `import '…'` and dynamic `import('…')`. */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

async function importGraph(): Promise<Edge[]> {
  const edges: Edge[] = [];
  for (const file of await sourceFiles(SRC)) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), match[1] ?? '');
      edges.push({ from: relative(SRC, file), to: relative(SRC, target) });
    }
  }
  return edges;
}

/** The top-level module of a path under src/: `config`, `domain`, or a file such as `errors.ts`. */
const moduleOf = (path: string): string => path.split('/')[0] ?? path;

/** Which modules each guarded module may import (besides itself); anything else is a violation. */
const ALLOWED: Record<string, readonly string[]> = {
  domain: [],
  config: ['domain', 'errors.ts'],
};

const ENGINES = ['backup', 'binlog', 'capture', 'catalog', 'lease', 'pipeline', 'restore', 'retention', 'sandbox', 'storage', 'verify'];

/** Imports that are refused outright, whatever else the module imports. */
const FORBIDDEN: Record<string, readonly string[]> = {
  scheduler: ['daemon', 'cli', 'ui'],
  ...Object.fromEntries(ENGINES.map((engine) => [engine, ['cli', 'ui', 'daemon']])),
};

function violations(edges: readonly Edge[]): string[] {
  const found: string[] = [];
  for (const { from, to } of edges) {
    const source = moduleOf(from);
    const target = moduleOf(to);
    if (source === target) continue;
    const allowed = ALLOWED[source];
    if (allowed && !allowed.includes(target)) found.push(`${from} imports ${to} (${source} may import only ${[source, ...allowed].join(', ')})`);
    if (FORBIDDEN[source]?.includes(target)) found.push(`${from} imports ${to} (${source} must not import ${target})`);
  }
  return found;
}

describe('import graph of src/', () => {
  it('keeps the leaf types, config, the scheduler and the engines from importing upward', async () => {
    const edges = await importGraph();
    // The parser sees the imports it must judge: a broken pattern would pass every rule vacuously.
    expect(edges).toContainEqual({ from: 'config/normalize.ts', to: 'domain/backup.ts' });
    expect(edges).toContainEqual({ from: 'scheduler/scheduler.ts', to: 'domain/schedule.ts' });
    expect(edges).toContainEqual({ from: 'main.ts', to: 'cli/program.ts' }); // a dynamic import
    expect(violations(edges)).toEqual([]);
  });

  it('reports each kind of upward import', () => {
    expect(
      violations([
        { from: 'config/normalize.ts', to: 'retention/policy.ts' },
        { from: 'config/schema.ts', to: 'catalog/manifest.ts' },
        { from: 'config/load.ts', to: 'daemon/events.ts' },
        { from: 'scheduler/scheduler.ts', to: 'daemon/events.ts' },
        { from: 'domain/backup.ts', to: 'errors.ts' },
        { from: 'restore/run-restore.ts', to: 'ui/progress.ts' },
        { from: 'daemon/daemon.ts', to: 'scheduler/scheduler.ts' },
        { from: 'cli/restore.ts', to: 'restore/run-restore.ts' },
        { from: 'config/schema.ts', to: 'domain/backup.ts' },
      ]),
    ).toEqual([
      'config/normalize.ts imports retention/policy.ts (config may import only config, domain, errors.ts)',
      'config/schema.ts imports catalog/manifest.ts (config may import only config, domain, errors.ts)',
      'config/load.ts imports daemon/events.ts (config may import only config, domain, errors.ts)',
      'scheduler/scheduler.ts imports daemon/events.ts (scheduler must not import daemon)',
      'domain/backup.ts imports errors.ts (domain may import only domain)',
      'restore/run-restore.ts imports ui/progress.ts (restore must not import ui)',
    ]);
  });
});
