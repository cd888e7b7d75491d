// s3rver 3.7.1 as a child process, plus an SDK client configured the way s3rver needs.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, httpAnswers, spawnService } from './child-process.ts';

export interface S3Server {
  endpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function s3rverBin(): string {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('s3rver/package.json');
  const pkg = require(pkgPath) as { bin: Record<string, string> };
  return join(dirname(pkgPath), pkg.bin['s3rver'] ?? 'bin/s3rver.js');
}

/** Starts s3rver storing into `dir`; pid/log files go to `runDir`. `port`: a fixed one (a restart on the same port). */
export async function startS3Server(opts: { dir: string; runDir: string; timeoutMs?: number; port?: number }): Promise<S3Server> {
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      const svc = await spawnService(
        's3rver',
        process.execPath,
        // --openssl-legacy-provider: without it paginated ListObjectsV2 fails with HTTP 500 on OpenSSL 3.
        ['--openssl-legacy-provider', s3rverBin(), '-d', opts.dir, '-a', '127.0.0.1', '-p', String(port), '--silent'],
        { runDir: opts.runDir, readyCheck: () => httpAnswers(endpoint), timeoutMs: opts.timeoutMs ?? 15_000 },
      );
      return { endpoint, port, pid: svc.pid, stop: svc.stop };
    } catch (err) {
      // freePort() races with other processes; retry if someone took the port in between.
      if (attempt >= 3 || opts.port !== undefined || !String(err).includes('EADDRINUSE')) throw err;
    }
  }
}

/** An S3 client for s3rver. WHEN_REQUIRED checksums: otherwise streamed bodies are stored with aws-chunked framing. */
export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** s3rver has no implicit buckets: create one before use. */
export async function createS3Bucket(endpoint: string, name: string): Promise<void> {
  const client = s3Client(endpoint);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}
