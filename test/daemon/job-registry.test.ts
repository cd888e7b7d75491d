// The daemon's job registry: the byte counting it wraps around a job's uploads must never turn a
// late stream error into an unhandled 'error' event (that killed the daemon when a second SIGTERM
// cancelled a dump: the capture's head tap failed after the put had already given up).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { JobRegistry } from '../../src/daemon/job-registry.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';

describe('job registry: counted uploads', () => {
  it('counts what a put stores', async () => {
    const job = new JobRegistry().create('backup', { database: 'shop', trigger: 'manual' });
    const storage = job.counting(new MemoryDriver());
    const body = new PassThrough();
    const put = storage.put('k', body);
    body.end(Buffer.alloc(1000));
    await expect(put).resolves.toEqual({ size: 1000 });
    expect(job.record.bytes).toBe(1000);
  });

  it('a body that fails after the put gave up is no unhandled error', async () => {
    const unhandled: unknown[] = [];
    const onError = (err: unknown) => unhandled.push(err);
    process.on('uncaughtException', onError);
    try {
      const job = new JobRegistry().create('backup', { database: 'shop', trigger: 'manual' });
      // A double: a store that gives up on a put without reading (or destroying) the body.
      const storage = job.counting(new (class extends ForwardingDriver {
        override put(): Promise<{ size: number }> {
          return Promise.reject(new Error('cancelled by a second SIGTERM'));
        }
      })(new MemoryDriver()));
      const body = new PassThrough();
      body.on('error', () => undefined); // the capture's own stages each have a listener
      await expect(storage.put('k', body)).rejects.toThrow('cancelled by a second SIGTERM');
      // Then a capture stage fails late (the head tap, on zstd output cut by the kill).
      body.destroy(new Error('the zstd output does not decode: unexpected end of file'));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
    }
  });
});
