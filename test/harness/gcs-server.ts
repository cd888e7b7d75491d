// The firebase-tools Cloud Storage emulator (GCS JSON API, in-memory, no Java) as a child process.
// See gcs-emulator-main.cjs for the firebase-tools internals this depends on.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpAnswers, spawnService } from './child-process.ts';

export interface GcsServer {
  /** e.g. http://127.0.0.1:PORT — use as `apiEndpoint` (or STORAGE_EMULATOR_HOST). */
  endpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./gcs-emulator-main.cjs', import.meta.url));

/** Any bucket name works implicitly (no bucket creation needed). Objects live in the child's memory. */
export async function startGcsServer(opts: { runDir: string; projectId?: string; timeoutMs?: number }): Promise<GcsServer> {
  // The emulator keeps blobs under os.tmpdir(): give each run its own TMPDIR.
  const tmpDir = join(opts.runDir, 'gcs-tmp');
  await mkdir(tmpDir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      const svc = await spawnService('gcs-emulator', process.execPath, [MAIN, String(port), opts.projectId ?? 'test'], {
        runDir: opts.runDir,
        env: { ...process.env, TMPDIR: tmpDir },
        readyCheck: () => httpAnswers(endpoint),
        timeoutMs: opts.timeoutMs ?? 20_000,
      });
      return { endpoint, port, pid: svc.pid, stop: svc.stop };
    } catch (err) {
      // freePort() races with other processes; retry if someone took the port in between.
      if (attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
    }
  }
}
