/**
 * The words every layer shares about a backup: its type, what triggered it, the family retention
 * counts it in, how its bytes are compressed. A leaf: nothing here imports from the agent, so
 * config, scheduler, daemon and catalog can all read it without importing each other.
 */

/** `dump` (logical, mariadb-dump), `full` and `incremental` (physical, mariadb-backup). */
export const BACKUP_TYPES = ['dump', 'full', 'incremental'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** Whether the scheduler or a person started the backup; retention counts them apart. */
export const TRIGGERS = ['manual', 'periodic'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** Retention families: logical (dumps) and physical (full backups and their incrementals) never count against each other. */
export const FAMILIES = ['logical', 'physical'] as const;
export type Family = (typeof FAMILIES)[number];

export const COMPRESSION_ALGORITHMS = ['zstd', 'gzip', 'none'] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

export interface Compression {
  algorithm: CompressionAlgorithm;
  level: number;
}
