import type { StorageConfig } from '../config/schema.ts';
import type { StorageDriver } from './driver.ts';
import { createGcsBucket, GcsDriver } from './gcs.ts';
import { LocalDriver } from './local.ts';
import { PrefixedDriver } from './prefixed.ts';
import { createS3Client, S3Driver } from './s3.ts';

/** The composition point from configuration to a concrete driver. */
export function openStorage(config: StorageConfig): StorageDriver {
  switch (config.type) {
    case 'local':
      return new LocalDriver(config.path);
    case 's3':
      return new PrefixedDriver(
        new S3Driver(createS3Client(config), {
          bucket: config.bucket,
          partSizeBytes: config.part_size_mb * 1024 * 1024,
          queueSize: config.upload_concurrency,
          storageClass: config.storage_class,
          serverSideEncryption: config.server_side_encryption,
          sseKmsKeyId: config.sse_kms_key_id,
        }),
        config.prefix,
      );
    case 'gcs':
      return new PrefixedDriver(new GcsDriver(createGcsBucket(config), { storageClass: config.storage_class }), config.prefix);
  }
}

/** A stable identity of a storage target, to share one driver between databases that use it. */
export function storageIdentity(config: StorageConfig): string {
  switch (config.type) {
    case 'local':
      return `local:${config.path}`;
    case 's3':
      return `s3:${config.endpoint ?? ''}:${config.bucket}/${config.prefix}`;
    case 'gcs':
      return `gcs:${config.endpoint ?? ''}:${config.bucket}/${config.prefix}`;
  }
}
