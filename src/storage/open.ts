import type { StorageConfig } from '../config/schema.ts';
import type { StorageDriver } from './driver.ts';
import { LocalDriver } from './local.ts';
import { PrefixedDriver } from './prefixed.ts';
import { RetryingDriver, type RetryingDriverOptions } from './retry.ts';

/**
 * The composition point from configuration to a concrete driver, wrapped in the one retrying
 * decorator (retry.ts): the drivers and the SDKs under them make one attempt per request. The
 * cloud SDKs are loaded only for the store in use: each costs ~30 MiB of resident memory that a
 * local-only agent need not pay.
 */
export async function openStorage(config: StorageConfig, retry: RetryingDriverOptions = {}): Promise<StorageDriver> {
  return new RetryingDriver(await openDriver(config, retry), retry);
}

async function openDriver(config: StorageConfig, retry: RetryingDriverOptions): Promise<StorageDriver> {
  switch (config.type) {
    case 'local':
      return new LocalDriver(config.path);
    case 's3': {
      const { createS3Client, S3Driver } = await import('./s3.ts');
      return new PrefixedDriver(
        new S3Driver(createS3Client(config), {
          bucket: config.bucket,
          partSizeBytes: config.part_size_mb * 1024 * 1024,
          queueSize: config.upload_concurrency,
          storageClass: config.storage_class,
          serverSideEncryption: config.server_side_encryption,
          sseKmsKeyId: config.sse_kms_key_id,
          conditionalWrites: config.conditional_writes,
          delimiterListing: config.delimiter_listing,
          ...(retry.policy ? { partRetry: retry.policy } : {}),
        }),
        config.prefix,
      );
    }
    case 'gcs': {
      const { createGcsBucket, GcsDriver } = await import('./gcs.ts');
      return new PrefixedDriver(new GcsDriver(createGcsBucket(config), { storageClass: config.storage_class, conditionalWrites: config.conditional_writes }), config.prefix);
    }
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
