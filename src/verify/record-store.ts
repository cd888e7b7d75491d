import { hostname } from 'node:os';
import { text } from 'node:stream/consumers';
import { bufferBody } from '../storage/buffer-body.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { AGENT_VERSION } from '../version.ts';
import { buildRecord, parseRecord, recordKey, serializeRecord, supersededRecords, type VerificationRecord } from './record.ts';
import type { VerifyReport } from './verify-backup.ts';

/**
 * Writes the record of `report` beside its backup (record.ts), then deletes the older records of
 * the same depth of that backup: one record per depth stays. `layout` is the manifest version of
 * the backup (its folder). Returns the key written.
 */
export async function storeRecord(storage: StorageDriver, report: VerifyReport, layout: number, signal?: AbortSignal): Promise<string> {
  const key = recordKey(report, layout);
  const record = buildRecord(report, report.notes, { version: AGENT_VERSION, hostname: hostname() });
  await storage.put(key, bufferBody(serializeRecord(record)), { contentType: 'application/json', ...(signal ? { signal } : {}) });
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const keys: string[] = [];
  for await (const o of storage.list(folder, signal ? { signal } : {})) keys.push(o.key);
  for (const old of supersededRecords(keys, key)) await storage.delete(old, signal ? { signal } : {});
  return key;
}

export async function readRecord(storage: StorageDriver, key: string): Promise<VerificationRecord> {
  return parseRecord(await text(await storage.get(key)), key);
}
