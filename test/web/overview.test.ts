import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedIntervalSeconds, shortestInterval } from '../../src/api/overview.ts';
import { loadUiAssets, UI_CSP } from '../../src/api/ui-assets.ts';

describe('the overview and the dashboard files', () => {
  it('expects a schedule every gap between its next two runs, in its zone', () => {
    const now = new Date('2026-12-01T10:00:00Z');
    expect(expectedIntervalSeconds('0 3 * * *', 'Europe/Paris', now)).toBe(86_400);
    expect(expectedIntervalSeconds('0 */6 * * *', 'UTC', now)).toBe(6 * 3600);
    expect(expectedIntervalSeconds('0 3 * * 0', 'UTC', now)).toBe(7 * 86_400);
    expect(shortestInterval([86_400, undefined, 3600])).toBe(3600);
    expect(shortestInterval([undefined])).toBeNull();
  });

  it('serves only the page, style sheets and scripts, each with its type, under a strict policy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ui-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html>');
    await writeFile(join(dir, 'app.js'), 'export {}');
    await writeFile(join(dir, 'app.js.map'), '{}');
    await writeFile(join(dir, 'style.css'), 'body{}');
    await writeFile(join(dir, 'logic.d.ts'), 'export {}');
    const assets = loadUiAssets(dir);
    expect([...assets.keys()].sort()).toEqual(['app.js', 'index.html', 'style.css']);
    expect(assets.get('app.js')?.type).toBe('text/javascript; charset=utf-8');
    expect(assets.get('index.html')?.etag).toMatch(/^"[\w-]{22}"$/);
    expect(UI_CSP).toContain("script-src 'self'");
    expect(UI_CSP).toContain("form-action 'none'");
    expect(UI_CSP).not.toContain('unsafe');
  });
});
