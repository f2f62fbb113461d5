import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';

/**
 * Inserts rows of an entity in one multi-row statement — every column the entity declares, generated ones
 * left to the database — and returns the `returning` columns of the rows inserted. Written here because
 * TypeORM reads back no generated ids of a multi-row insert on SQLite (both stores take `RETURNING`), and
 * builds its statement at several microseconds a value. Callers keep a chunk's values within the drivers'
 * parameter limits (SQLite 32,766, PostgreSQL 65,535). The table is named bare, as the stores' other
 * hand-written SQL names it (see `createDataSource`).
 */
export async function insertRows<Entity extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<Entity>,
  rows: readonly Entity[],
  returning: readonly string[] = [],
): Promise<Array<Record<string, unknown>>> {
  const metadata = manager.connection.getMetadata(target);
  const columns = metadata.columns.filter((column) => !column.isGenerated);
  const placeholder = manager.connection.options.type === 'postgres' ? (position: number) => `$${position}` : () => '?';
  const tuples = rows.map((_, row) => `(${columns.map((_, column) => placeholder(row * columns.length + column + 1)).join(', ')})`);
  const returned: unknown = await manager.query(
    `INSERT INTO ${metadata.tableName} (${columns.map((column) => column.databaseName).join(', ')}) VALUES ${tuples.join(', ')}${returning.length ? ` RETURNING ${returning.join(', ')}` : ''}`,
    rows.flatMap((row) => columns.map((column) => column.getEntityValue(row, true) ?? null)),
  );
  return returning.length ? (returned as Array<Record<string, unknown>>) : [];
}
