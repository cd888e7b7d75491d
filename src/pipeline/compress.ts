import { PassThrough, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from '../config/normalize.ts';
import { BLOCK_SIZE } from './rechunk.ts';

/**
 * Compression stages. zstd uses Node 24's built-in zlib binding (no native addon), with the frame
 * checksum on so `zstd -t` and `zstd -d` verify archives; gzip is plain gzip. Both produce files
 * the stock `zstd` and `gzip` tools read.
 */

export type Algorithm = Compression['algorithm'];

/** Output block size of the (de)compressors: larger blocks mean fewer thread-pool round trips. */
const CHUNK = 256 * 1024;
/** zlib passes its options on to Transform; its types do not say so. */
const STAGE_BUFFER: object = { highWaterMark: BLOCK_SIZE };

export function createCompressor(compression: Compression): Transform {
  switch (compression.algorithm) {
    case 'zstd':
      return zlib.createZstdCompress({
        chunkSize: CHUNK,
        ...STAGE_BUFFER,
        params: {
          [zlib.constants.ZSTD_c_compressionLevel]: compression.level,
          [zlib.constants.ZSTD_c_checksumFlag]: 1,
        },
      });
    case 'gzip':
      return zlib.createGzip({ level: compression.level, chunkSize: CHUNK, ...STAGE_BUFFER });
    case 'none':
      return new PassThrough({ highWaterMark: BLOCK_SIZE });
  }
}

export function createDecompressor(algorithm: Algorithm): Transform {
  switch (algorithm) {
    case 'zstd':
      return zlib.createZstdDecompress({ chunkSize: CHUNK });
    case 'gzip':
      return zlib.createGunzip({ chunkSize: CHUNK });
    case 'none':
      return new PassThrough();
  }
}

/** File-name extension of a compressed stream, with the dot: ".zst", ".gz" or "". */
export function compressionExtension(algorithm: Algorithm): string {
  return algorithm === 'zstd' ? '.zst' : algorithm === 'gzip' ? '.gz' : '';
}
