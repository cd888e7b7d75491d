import { open, readdir } from 'node:fs/promises';
import { EventScanner, EventType } from './events.ts';
import { isBinlogName } from './names.ts';
import { compareFiles, splitBinlogName } from './segments.ts';

/** What the capture reads of the files mariadb-binlog writes into its spool. */

/** The format description event at the head of a spooled file: writer, creation time, checksums. */
export async function readFileHeader(path: string): Promise<{ serverId: number; createdAt: string; checksumAlg: number } | undefined> {
  const fh = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buffer, 0, buffer.length, 0);
    const scanner = new EventScanner(0);
    const fde = scanner.push(buffer.subarray(0, bytesRead)).find((e) => e.type === EventType.FORMAT_DESCRIPTION);
    if (!fde) return undefined;
    return { serverId: fde.serverId, createdAt: new Date(fde.timestamp * 1000).toISOString(), checksumAlg: fde.checksumAlg ?? 1 };
  } finally {
    await fh.close();
  }
}

/** The next binlog file the tool has started writing after `file`, if any (only well-formed names count). */
export async function laterFile(spool: string, file: string): Promise<string | undefined> {
  const names = (await readdir(spool)).filter((n) => isBinlogName(n) && splitBinlogName(n).number >= 0 && compareFiles(n, file) > 0).sort(compareFiles);
  return names[0];
}
