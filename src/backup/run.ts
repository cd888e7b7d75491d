import type { BackupType, Manifest } from '../catalog/manifest.ts';
import { runPhysicalBackup } from './physical-backup.ts';
import { runLogicalBackup, type BackupContext } from './run-backup.ts';

/** Takes one backup of the given type: the one entry point for run-now and the daemon. */
export function runBackup(ctx: BackupContext, type: BackupType): Promise<Manifest> {
  return type === 'dump' ? runLogicalBackup(ctx) : runPhysicalBackup(ctx, type);
}
