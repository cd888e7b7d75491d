import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { ageEnvelope, contentKind, describeStanzas, DumpScanner, outerCompression } from '../../src/restore/foreign-format.ts';

const bytes = (...values: number[]) => Uint8Array.from(values);

describe('foreign archive formats, by their bytes', () => {
  it('tells gzip, zstd and plain bytes apart', () => {
    expect(outerCompression(gzipSync('x'))).toEqual({ compression: 'gzip' });
    expect(outerCompression(zstdCompressSync('x'))).toEqual({ compression: 'zstd' });
    expect(outerCompression(Buffer.from('-- MariaDB dump'))).toEqual({ compression: 'none' });
    expect(outerCompression(Buffer.from('XBSTCK01'))).toEqual({ compression: 'none' });
  });

  it('names the formats it cannot read, with the stock command that makes them readable', () => {
    expect(outerCompression(Buffer.from('age-encryption.org/v1\n-> X25519'))).toEqual({ unsupported: expect.stringContaining('age -d -i KEY') });
    expect(outerCompression(Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----'))).toEqual({ unsupported: expect.stringContaining('armor') });
    expect(outerCompression(bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1))).toEqual({ unsupported: expect.stringContaining('xz -dc') });
    expect(outerCompression(Buffer.from('BZh91AY'))).toEqual({ unsupported: expect.stringContaining('bzip2') });
    expect(outerCompression(bytes(0x04, 0x22, 0x4d, 0x18))).toEqual({ unsupported: expect.stringContaining('lz4') });
    expect(outerCompression(bytes(0x50, 0x4b, 0x03, 0x04))).toEqual({ unsupported: expect.stringContaining('zip') });
  });

  it('tells an age file by its header, binary or armored, and the types of its recipient stanzas', () => {
    const header = 'age-encryption.org/v1\n-> X25519 SVrzdFfkPxf0LPHOUGB1gNb9E5Vr8EUDa9kxk04iQ0o\nb0L0l0fWdaAl7HVR29zqX7AqqREvbqTGHc3dBprevLU\n-> X25519 XhOLlB1e+8yRPpGDDbIoE0LBgXR5HLB8Gz9e1hDgbSQ\nN6m/TFBk3o4Jfy1UodHsdjTAQkN4O7qcNBHQUhKhr7c\n--- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n';
    expect(ageEnvelope(Buffer.from(`${header}\x01\x02binary payload`))).toEqual({ armored: false, stanzas: ['X25519', 'X25519'] });
    expect(ageEnvelope(Buffer.from('age-encryption.org/v1\n-> scrypt 1TIV4NTCQGXfDu0e1c2K5w 18\nq7CeXFNBtUtD2lH9Rz5w8xmIvQ3A6lcGz6CgS9yGgAI\n--- x'))).toEqual({ armored: false, stanzas: ['scrypt'] });
    const armored = `-----BEGIN AGE ENCRYPTED FILE-----\n${Buffer.from(header).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END AGE ENCRYPTED FILE-----\n`;
    expect(ageEnvelope(Buffer.from(armored))).toEqual({ armored: true, stanzas: ['X25519', 'X25519'] });
    // A head cut inside the header still tells what it reached.
    expect(ageEnvelope(Buffer.from(header.slice(0, 60)))).toEqual({ armored: false, stanzas: ['X25519'] });
    expect(ageEnvelope(Buffer.from('-- MariaDB dump'))).toBeUndefined();
    expect(ageEnvelope(gzipSync('age-encryption.org/v1\n'))).toBeUndefined();
  });

  it('says what an age header tells of its recipients (it never names them)', () => {
    expect(describeStanzas(['scrypt'])).toBe('a passphrase (scrypt)');
    expect(describeStanzas(['X25519'])).toBe('1 X25519 recipient (an age header does not name them)');
    expect(describeStanzas(['X25519', 'X25519', 'ssh-ed25519'])).toBe('2 X25519 recipients, 1 ssh-ed25519 recipient (an age header does not name them)');
  });

  it('tells a SQL dump, an xbstream and a tar apart, and knows nothing else', () => {
    expect(contentKind(Buffer.from('-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n'))).toBe('sql');
    expect(contentKind(Buffer.from('/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;'))).toBe('sql');
    expect(contentKind(Buffer.from('\n\nCREATE TABLE t (a int);'))).toBe('sql');
    expect(contentKind(Buffer.from('XBSTCK01\0\0\0\0'))).toBe('xbstream');
    const tar = Buffer.alloc(512);
    tar.write('ibdata1', 0);
    tar.write('ustar', 257);
    expect(contentKind(tar)).toBe('tar');
    expect(contentKind(Buffer.from('hello world, not sql'))).toBeUndefined();
    expect(contentKind(Buffer.from('-- looks like sql\0but has a NUL'))).toBeUndefined();
    expect(contentKind(Buffer.alloc(0))).toBeUndefined();
  });
});

async function scan(chunks: string[]): Promise<DumpScanner> {
  const scanner = new DumpScanner();
  await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), scanner);
  return scanner;
}

describe('DumpScanner', () => {
  it('finds the schemas of CREATE DATABASE and USE lines, across chunk boundaries, and the closing line', async () => {
    const dump = [
      '-- MariaDB dump 10.19\n',
      'CREATE DATABASE /*!32312 IF NOT EXISTS*/ `sh',
      'op` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n',
      'USE `shop`;\n',
      `INSERT INTO t VALUES ${'(1),'.repeat(5000)}(2);\n`,
      'CREATE DATABASE IF NOT EXISTS `odd``name`;\nUSE `odd``name`;\n',
      '-- Dump completed on 2026-12-01  5:00:00\n',
    ];
    const scanner = await scan(dump);
    expect([...scanner.schemas]).toEqual(['shop', 'odd`name']);
    expect(scanner.complete).toBe(true);
    expect(scanner.bytes).toBe(Buffer.byteLength(dump.join('')));
  });

  it('does not take a schema from inside a long data line, and knows a cut dump', async () => {
    const scanner = await scan([`INSERT INTO t VALUES ('${'x'.repeat(10_000)}`, "USE `not`;'), ('CREATE DATABASE `nor`');\n", 'INSERT INTO t VALUES (3);']);
    expect([...scanner.schemas]).toEqual([]);
    expect(scanner.complete).toBe(false);
    const plain = await scan(['CREATE TABLE t (a int);\n']);
    expect([...plain.schemas]).toEqual([]);
  });

  it('reads only lines that start with C or U, wherever a chunk splits them (one row per line, as mariadb-dump writes)', async () => {
    const scanner = await scan([
      'INSERT INTO `t` VALUES\n',
      "(1,'x\nUSE `no`;'),\n(2,'y'),\n",
      'U',
      'SE `a`;\n',
      "(3,'\n",
      "CREATE DATABASE `b`;')\n",
      'CREATE DATABASE `c`;\n',
      ' USE `not`;\n\nUSE `d`;\n',
    ]);
    // A row's text holds no raw newline (the dump escapes it), so a line starting USE in a value cannot come from a real dump; the test only shows that line starts decide.
    expect([...scanner.schemas]).toEqual(['no', 'a', 'b', 'c', 'd']);
  });
});
