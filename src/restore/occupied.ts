import type mysql from 'mysql2/promise';
import { withConnection } from '../capture/server.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError } from '../errors.ts';

/**
 * What a target schema already holds. A schema "holds data" when it has any table, view, routine,
 * trigger or event: a restore over it drops and recreates what the backup carries, so any of them
 * can be lost, not only tables.
 */

export interface SchemaObjects {
  schema: string;
  tables: number;
  views: number;
  routines: number;
  triggers: number;
  events: number;
}

/** Pure: the schemas that hold anything, each described as "shop (2 tables, 1 routine)". */
export function describeOccupied(objects: readonly SchemaObjects[]): string[] {
  const parts = (o: SchemaObjects): string[] =>
    (
      [
        [o.tables, 'table'],
        [o.views, 'view'],
        [o.routines, 'routine'],
        [o.triggers, 'trigger'],
        [o.events, 'event'],
      ] as const
    )
      .filter(([n]) => n > 0)
      .map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`);
  return objects.filter((o) => parts(o).length > 0).map((o) => `${o.schema} (${parts(o).join(', ')})`);
}

/** Counts the objects of each of `schemas` on the target (a schema that does not exist holds none). */
export async function readSchemaObjects(db: mysql.Connection, schemas: readonly string[]): Promise<SchemaObjects[]> {
  if (schemas.length === 0) return [];
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    `SELECT s.schema_name AS name,
       (SELECT COUNT(*) FROM information_schema.tables t WHERE t.table_schema = s.schema_name AND t.table_type <> 'VIEW') AS tables,
       (SELECT COUNT(*) FROM information_schema.views v WHERE v.table_schema = s.schema_name) AS views,
       (SELECT COUNT(*) FROM information_schema.routines r WHERE r.routine_schema = s.schema_name) AS routines,
       (SELECT COUNT(*) FROM information_schema.triggers g WHERE g.trigger_schema = s.schema_name) AS triggers,
       (SELECT COUNT(*) FROM information_schema.events e WHERE e.event_schema = s.schema_name) AS events
     FROM information_schema.schemata s WHERE s.schema_name IN (?)`,
    [schemas],
  );
  const byName = new Map(rows.map((r) => [String(r['name']), r]));
  return schemas.map((schema) => {
    const r = byName.get(schema);
    const n = (key: string) => Number(r?.[key] ?? 0);
    return { schema, tables: n('tables'), views: n('views'), routines: n('routines'), triggers: n('triggers'), events: n('events') };
  });
}

/**
 * The refusal of a restore into schemas that hold data, as the caller words it: the CLI says
 * `--yes`, the API `"overwrite": true` (and, refusing before its job exists, that nothing was
 * written). Reads the target's schemas once and returns what they hold (empty when nothing), so
 * a caller that goes on knows whether to verify the backup before writing over data.
 */
export async function refuseOccupied(
  target: Pick<DatabaseConfig, 'name' | 'connection'>,
  schemas: readonly string[],
  overwrite: boolean,
  refusal: { hint: string; nothingWritten?: boolean },
): Promise<string[]> {
  const occupied = await withConnection(target.name, target.connection, async (db) => describeOccupied(await readSchemaObjects(db, schemas)));
  if (occupied.length > 0 && !overwrite) {
    const several = occupied.length > 1;
    throw new AgentError('refused', `restore into ${target.name}: schema${several ? 's' : ''} ${occupied.join(', ')} already hold${several ? '' : 's'} data${refusal.nothingWritten ? '; nothing was written' : ''}`, {
      hint: refusal.hint,
    });
  }
  return occupied;
}
