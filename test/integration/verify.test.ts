// `agent verify` on s3rver against real backups of a throwaway MariaDB: a logical dump, a
// physical full + incremental chain (mariadb-backup) and a binlog archive (agent binlog capture).
// Every depth passes on the good ones; each damage is caught at its depth, with exit 1 and a
// message naming the backup, the object and what is wrong. Damage is made in the store with the
// S3 API (and the manifest rewritten to match, where the test says so), then undone.
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { s3Client } from '../harness/s3-server.ts';
import { AGENT, agent, storageYaml, testDir, writeConfig } from '../helpers.ts';

let dir: string;
let server: Sandbox;
let config: string;
let bucket: string;
let s3: S3Client;
const PREFIX = 'backups/prod/';
let dump: Manifest;
let full: Manifest;
let incremental: Manifest;
let identity: string;

interface Manifest {
  id: string;
  type: string;
  sizeBytes: number;
  rawSizeBytes: number;
  objects: { key: string; sizeBytes: number; sha256: string; rawSizeBytes: number }[];
}

const getBytes = async (key: string): Promise<Buffer> => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: PREFIX + key }))).Body!.transformToByteArray());
const putBytes = async (key: string, body: Buffer): Promise<void> => {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: PREFIX + key, Body: body }));
};
const manifestKey = (id: string) => `verify/backups/${id}/manifest.json`;

/** Replaces a backup's data object with `data` and rewrites its manifest to match: the damage only the archive depth can see. Returns an undo. */
async function replaceConsistently(m: Manifest, data: Buffer, rawSizeBytes?: number): Promise<() => Promise<void>> {
  const object = m.objects[0]!;
  const [oldData, oldManifest] = [await getBytes(object.key), await getBytes(manifestKey(m.id))];
  const manifest = JSON.parse(oldManifest.toString()) as Manifest;
  const o = manifest.objects[0]!;
  o.sizeBytes = data.length;
  o.sha256 = createHash('sha256').update(data).digest('hex');
  if (rawSizeBytes !== undefined) {
    o.rawSizeBytes = rawSizeBytes;
    manifest.rawSizeBytes = rawSizeBytes;
  }
  manifest.sizeBytes = data.length;
  await putBytes(object.key, data);
  await putBytes(manifestKey(m.id), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  return async () => {
    await putBytes(object.key, oldData);
    await putBytes(manifestKey(m.id), oldManifest);
  };
}

/** The xbstream without the chunks of `path`. */
function dropXbstreamFile(stream: Buffer, path: string): Buffer {
  const kept: Buffer[] = [];
  let at = 0;
  while (at < stream.length) {
    const type = stream.readUInt8(at + 9);
    const pathLength = stream.readUInt32LE(at + 10);
    const name = stream.subarray(at + 14, at + 14 + pathLength).toString();
    let end = at + 14 + pathLength;
    if (type === 0x50) end += 20 + Number(stream.readBigUInt64LE(end));
    else if (type === 0x53) end += 24 + stream.readUInt32LE(end) * 8 + Number(stream.readBigUInt64LE(end + 4));
    if (name !== path) kept.push(stream.subarray(at, end));
    at = end;
  }
  return Buffer.concat(kept);
}

const zstd = (args: string[], input: Buffer) => execFileSync('zstd', args, { input, maxBuffer: 1 << 30 });

const verify = (...args: string[]) => agent(['--config', config, 'verify', ...(args.includes('--database') ? [] : ['--database', 'verify']), ...args]);

async function runNow(type: string): Promise<Manifest> {
  const result = await agent(['--config', config, 'run-now', '--database', 'verify', '--type', type, '--json']);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as Manifest[])[0]!;
}

interface ArchiveSummary {
  runs: { to: { file: string; position: number } }[];
}

/** Runs `agent binlog capture` while rows are written, until the archive holds several segments up to the server's position. */
async function captureSegments(): Promise<void> {
  const child: ResultPromise = execa(process.execPath, [AGENT, '--config', config, 'binlog', 'capture'], { reject: false, stdin: 'ignore', all: true });
  const segmentCount = async () => (await listKeys('verify/binlog/')).filter((k) => k.endsWith('.json') && !k.includes('/verify/')).length;
  for (let i = 0; i < 100 && (await segmentCount()) === 0; i++) await sleep(100);
  for (let i = 0; i < 4; i++) {
    await server.sql(`INSERT INTO shop.orders (customer_id, total, placed_at) VALUES (1, ${i + 1}, NOW())`);
    await sleep(700);
  }
  const [file, position] = (await server.sql('SHOW MASTER STATUS')).split('\t');
  for (let i = 0; i < 150; i++) {
    const summary = (JSON.parse((await agent(['--config', config, 'binlog', 'list', '--json'])).stdout) as ArchiveSummary[])[0];
    const end = summary?.runs.at(-1)?.to;
    if (end && end.file === file && end.position >= Number(position)) break;
    await sleep(100);
  }
  child.kill('SIGTERM');
  const result = await child;
  expect(result.exitCode, String(result.all)).toBe(0);
}

beforeAll(async () => {
  dir = await testDir('verify');
  server = await startSandbox({ dir: join(dir, 'server'), port: await freePort(), serverId: 57 });
  await server.sql(sampleDataSql('shop', 300));
  const storage = await storageYaml('s3');
  bucket = /bucket: (\S+)/.exec(storage)?.[1] ?? '';
  s3 = s3Client(inject('s3').endpoint);
  identity = join(dir, 'age-key.txt');
  await execa('age-keygen', ['-o', identity]);
  const recipient = (await execa('age-keygen', ['-y', identity])).stdout.trim();
  config = await writeConfig(
    dir,
    [
      'storage:',
      storage,
      'databases:',
      '  - name: verify',
      `    socket: ${server.socket}`,
      '    user: root',
      '    schemas: [shop]',
      `    binlog: { enabled: true, segment_age: 200ms, spool_dir: ${join(dir, 'spool')} }`,
      '  - name: sealed',
      `    socket: ${server.socket}`,
      '    user: root',
      '    schemas: [shop]',
      `    encryption: { recipients: [${recipient}] }`,
      '',
    ].join('\n'),
  );
  dump = await runNow('dump');
  full = await runNow('full');
  await server.sql("INSERT INTO shop.orders (customer_id, total, placed_at) VALUES (2, 42, NOW())");
  incremental = await runNow('incremental');
  await captureSegments();
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

describe('agent verify', () => {
  it('passes every backup and the binlog archive at the objects and archive depths, and records it', async () => {
    for (const depth of ['objects', 'archive']) {
      const result = await verify('--all', '--binlog', '--depth', depth);
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
      for (const m of [dump, full, incremental]) expect(result.stdout).toContain(`verified verify/${m.id} at depth ${depth}`);
      expect(result.stdout).toContain(`verified verify binlog archive at depth ${depth}`);
    }
    const json = await verify('--backup', incremental.id, '--json');
    expect(json.exitCode).toBe(0);
    const [report] = JSON.parse(json.stdout) as { backupId: string; depth: string; ok: boolean; problems: unknown[]; record: string }[];
    expect(report).toMatchObject({ backupId: incremental.id, depth: 'archive', ok: true, problems: [] });
    expect(report?.record).toMatch(new RegExp(`^verify/backups/${incremental.id}/verify/\\d{8}T\\d{6}\\.\\d{3}Z-archive-ok\\.json$`));

    const listed = await agent(['--config', config, 'list']);
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout).toContain('VERIFIED');
    expect(listed.stdout).toMatch(new RegExp(`${dump.id} .* archive \\d{4}-\\d{2}-\\d{2}`));
    const listedJson = JSON.parse((await agent(['--config', config, 'list', '--json'])).stdout) as { id: string; verified: { depth: string; ok: boolean } | null }[];
    expect(listedJson.find((b) => b.id === full.id)?.verified).toMatchObject({ depth: 'archive', ok: true });
    const status = await agent(['--config', config, 'status', '--json']);
    const verifications = (JSON.parse(status.stdout) as { verifications: Record<string, { backup: { depth: string; ok: boolean } | null; binlog: { ok: boolean } | null }> }).verifications;
    expect(verifications['verify']?.backup).toMatchObject({ depth: 'archive', ok: true });
    expect(verifications['verify']?.binlog).toMatchObject({ ok: true });
  });

  it('objects: a missing data object fails with the backup, the key and what', async () => {
    const key = dump.objects[0]!.key;
    const saved = await getBytes(key);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: PREFIX + key }));
    try {
      const result = await verify('--backup', dump.id, '--depth', 'objects');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/${dump.id}: ${key}: the object is missing`);
      expect(result.stdout).toContain(`FAILED   verify/${dump.id} at depth objects`);
      const listed = await agent(['--config', config, 'list']);
      expect(listed.stdout).toMatch(new RegExp(`${dump.id} .* FAILED objects`));
    } finally {
      await putBytes(key, saved);
    }
  });

  it('objects: a flipped byte fails the SHA-256', async () => {
    const key = full.objects[0]!.key;
    const saved = await getBytes(key);
    const damaged = Buffer.from(saved);
    damaged[Math.floor(damaged.length / 2)]! ^= 0x01;
    await putBytes(key, damaged);
    try {
      const result = await verify('--backup', full.id, '--depth', 'objects');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/${full.id}: ${key}: checksum mismatch: SHA-256 `);
    } finally {
      await putBytes(key, saved);
    }
  });

  it('archive: a stream cut short, with the manifest rewritten to match, passes objects and fails archive', async () => {
    const key = dump.objects[0]!.key;
    const saved = await getBytes(key);
    const undo = await replaceConsistently(dump, saved.subarray(0, Math.floor(saved.length / 2)));
    try {
      expect((await verify('--backup', dump.id, '--depth', 'objects')).exitCode).toBe(0);
      const result = await verify('--backup', dump.id, '--depth', 'archive');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`error: verify/${dump.id}: ${key}: the content does not decode to its end: zstd: .*`));
    } finally {
      await undo();
    }
  });

  it('archive: a dump without its completion line (recompressed, manifest rewritten) fails', async () => {
    const sql = zstd(['-d', '-c'], await getBytes(dump.objects[0]!.key)).toString('utf8');
    expect(sql).toMatch(/-- Dump completed on .*\n$/);
    const cut = Buffer.from(sql.replace(/-- Dump completed on [^\n]*\n$/, ''));
    const undo = await replaceConsistently(dump, zstd(['-q', '-c', '--check'], cut), cut.length);
    try {
      const result = await verify('--backup', dump.id);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/${dump.id}: ${dump.objects[0]!.key}: the dump does not end with the dump tool's completion line (-- Dump completed)`);
    } finally {
      await undo();
    }
  });

  it('archive: an xbstream without a file the prepare needs (recompressed, manifest rewritten) fails', async () => {
    const stream = zstd(['-d', '-c'], await getBytes(incremental.objects[0]!.key));
    const cut = dropXbstreamFile(stream, 'backup-my.cnf');
    expect(cut.length).toBeLessThan(stream.length);
    const undo = await replaceConsistently(incremental, zstd(['-q', '-c', '--check'], cut), cut.length);
    try {
      const result = await verify('--backup', incremental.id, '--depth', 'archive');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/${incremental.id}: ${incremental.objects[0]!.key}: the xbstream holds no backup-my.cnf, which mariadb-backup --prepare needs`);
    } finally {
      await undo();
    }
  });

  it('binlog archive: a segment whose data is gone is named, and the gap it leaves is reported from the objects', async () => {
    const segments = (await listKeys('verify/binlog/')).filter((k) => /\.binlog(\.zst)?$/.test(k));
    expect(segments.length).toBeGreaterThan(2);
    const key = segments[1]!;
    const saved = await getBytes(key);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: PREFIX + key }));
    try {
      const result = await verify('--binlog', '--depth', 'objects');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/binlog: ${key}: the segment's data object is not in the store`);
      expect(result.stderr).toMatch(/error: verify\/binlog: the archive's objects leave a gap the segment manifests do not show: .*bytes \d+–\d+ of mysql-bin\.\d+ are missing/);
    } finally {
      await putBytes(key, saved);
    }
    const damaged = Buffer.from(saved);
    damaged[damaged.length - 6]! ^= 0x40;
    await putBytes(key, damaged);
    try {
      const result = await verify('--binlog', '--depth', 'objects');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: verify/binlog: ${key}: checksum mismatch`);
    } finally {
      await putBytes(key, saved);
    }
  });

  it('binlog archive: a segment with a flipped event byte (recompressed, manifest rewritten) passes objects and fails archive on its CRC-32', async () => {
    const segments = (await listKeys('verify/binlog/')).filter((k) => /\.binlog\.zst$/.test(k));
    const key = segments.at(-1)!;
    const manifestKeyOf = key.replace(/\.binlog\.zst$/, '.json');
    const [data, manifestText] = [await getBytes(key), await getBytes(manifestKeyOf)];
    const raw = zstd(['-d', '-c'], data);
    const damaged = Buffer.from(raw);
    damaged[damaged.length - 10]! ^= 0x01; // inside the last event, before its checksum
    const packed = zstd(['-q', '-c', '--check'], damaged);
    const manifest = JSON.parse(manifestText.toString()) as { object: { sizeBytes: number; sha256: string } };
    manifest.object.sizeBytes = packed.length;
    manifest.object.sha256 = createHash('sha256').update(packed).digest('hex');
    await putBytes(key, packed);
    await putBytes(manifestKeyOf, Buffer.from(JSON.stringify(manifest)));
    try {
      expect((await verify('--binlog', '--depth', 'objects')).exitCode).toBe(0);
      const result = await verify('--binlog', '--depth', 'archive');
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`error: verify/binlog: ${key.replace(/\./g, '\\.')}: the segment is not a clean run of binlog events: the event at \\d+ fails its CRC-32`));
    } finally {
      await putBytes(key, data);
      await putBytes(manifestKeyOf, manifestText);
    }
  });

  it('an encrypted backup without an identity is checked to its stored bytes only, and says so; with --identity to its content', async () => {
    const taken = await agent(['--config', config, 'run-now', '--database', 'sealed', '--json']);
    expect(taken.exitCode).toBe(0);
    const id = (JSON.parse(taken.stdout) as Manifest[])[0]!.id;
    const bare = await agent(['--config', config, 'verify', '--database', 'sealed', '--json']);
    expect(bare.exitCode).toBe(0);
    expect(bare.stderr).toContain(`note: sealed/${id}: the archive depth could only check the stored bytes: the backup is encrypted with age to age1`);
    expect(JSON.parse(bare.stdout)).toMatchObject([{ backupId: id, depth: 'objects', requestedDepth: 'archive', ok: true }]);
    const opened = await agent(['--config', config, 'verify', '--database', 'sealed', '--identity', identity, '--json']);
    expect(opened.stderr).toBe('');
    expect(opened.exitCode).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject([{ backupId: id, depth: 'archive', ok: true }]);
  });

  it('restore: the dump and the physical chain restore into a throwaway server and check out, recorded at depth restore', async () => {
    for (const m of [dump, incremental]) {
      const result = await verify('--backup', m.id, '--depth', 'restore');
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toContain(`verified verify/${m.id} at depth restore`);
      expect((await listKeys(`verify/backups/${m.id}/verify/`)).some((k) => k.endsWith('-restore-ok.json'))).toBe(true);
    }
  }, 180_000);

  it('retention keeps the newest verified backup until a newer one is verified, and says so in prune --dry-run', async () => {
    const newerFull = await runNow('full');
    const yaml = (await readFile(config, 'utf8')).replace("    schemas: [shop]\n    binlog:", "    schemas: [shop]\n    retention: { keep_last: 1, manual: { keep_last: 1 } }\n    binlog:");
    const pruneConfig = join(dir, 'prune-verified.yaml');
    await writeFile(pruneConfig, yaml);
    const plan = async () => (JSON.parse((await agent(['--config', pruneConfig, 'prune', '--database', 'verify', '--dry-run', '--json'])).stdout) as { keep: { id: string; reasons: string[] }[]; remove: { id: string }[] }[])[0]!;
    // The new full backup is the newest of its family; the verified incremental (and its full) stay for their proof.
    const before = await plan();
    expect(before.keep.find((k) => k.id === incremental.id)?.reasons).toEqual([expect.stringMatching(/^newest verified \((restore|archive), \d{4}-\d{2}-\d{2}T[\d:.]+Z\)$/)]);
    expect(before.keep.find((k) => k.id === full.id)?.reasons).toEqual([`needed by incremental ${incremental.id}`]);
    expect((await verify('--backup', newerFull.id)).exitCode).toBe(0);
    const after = await plan();
    expect(after.keep.find((k) => k.id === newerFull.id)?.reasons.some((r) => r.startsWith('newest verified (archive, '))).toBe(true);
    expect(after.remove.map((r) => r.id)).toEqual(expect.arrayContaining([incremental.id, full.id]));
  });

  it('prune removes a backup together with its verification records', async () => {
    const before = await listKeys(`verify/backups/${dump.id}/verify/`);
    expect(before.length).toBeGreaterThan(0);
    const newer = await runNow('dump');
    const yaml = (await readFile(config, 'utf8')).replace("    schemas: [shop]\n    binlog:", "    schemas: [shop]\n    retention: { keep_last: 1, manual: { keep_last: 1 } }\n    binlog:");
    const pruneConfig = join(dir, 'prune.yaml');
    await writeFile(pruneConfig, yaml);
    const pruned = await agent(['--config', pruneConfig, 'prune', '--database', 'verify']);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(await listKeys(`verify/backups/${dump.id}/`)).toEqual([]);
    expect((await listKeys(`verify/backups/${newer.id}/`)).length).toBeGreaterThan(0);
  });

  it('usage: clashing selections and an unknown depth exit 2 naming the flag', async () => {
    const both = await verify('--all', '--latest');
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('error: --all and --latest: choose one');
    const depth = await verify('--depth', 'deep');
    expect(depth.exitCode).toBe(2);
    expect(depth.stderr).toContain("option '--depth <depth>' argument 'deep' is invalid");
  });
});

async function listKeys(prefix: string): Promise<string[]> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIX + prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key.slice(PREFIX.length));
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}
