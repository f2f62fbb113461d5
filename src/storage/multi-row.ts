import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';

/**
 * Multi-row statements, written here because TypeORM reads back no generated ids of a multi-row insert on
 * SQLite, and builds its own statements at several microseconds a value (a 50,000-statement consent import
 * spent seconds in `upsert` alone). Values are prepared as TypeORM stores them (transformers, booleans on
 * SQLite). Tables are named bare, as the stores' other hand-written SQL names them (see `createDataSource`).
 * Callers keep a chunk within the stores' limits: parameters (SQLite 32,766, PostgreSQL 65,535) and SQLite's
 * expression depth of 1,000 (a list of conditions joined by OR is as deep as it is long; these statements
 * join none).
 */

export interface InsertOptions {
  /** Columns (by the entity's property names) to read back from each row inserted. */
  readonly returning?: readonly string[];
  /** The entity's properties that identify a row: a row that exists takes the inserted row's other values. */
  readonly replacingOn?: readonly string[];
}

/**
 * Inserts `rows` in one statement, every column the entity declares but the generated ones (a property left
 * undefined is NULL, not the column's default), and returns the `returning` properties of the rows inserted.
 */
export async function insertRows<Entity extends ObjectLiteral>(manager: EntityManager, target: EntityTarget<Entity>, rows: readonly Entity[], options: InsertOptions = {}): Promise<Array<Record<string, unknown>>> {
  if (rows.length === 0) return [];
  const metadata = manager.connection.getMetadata(target);
  const columns = metadata.columns.filter((column) => !column.isGenerated);
  const placeholder = placeholders(manager);
  const tuples = rows.map((_, row) => `(${columns.map((_, column) => placeholder(row * columns.length + column + 1)).join(', ')})`);
  let sql = `INSERT INTO ${metadata.tableName} (${columns.map((column) => column.databaseName).join(', ')}) VALUES ${tuples.join(', ')}`;
  if (options.replacingOn) {
    const keys = options.replacingOn.map((property) => columnOf(metadata.columns, property));
    const others = columns.filter((column) => !keys.includes(column));
    sql += ` ON CONFLICT (${keys.map((column) => column.databaseName).join(', ')}) DO UPDATE SET ${others.map((column) => `${column.databaseName} = excluded.${column.databaseName}`).join(', ')}`;
  }
  const returning = (options.returning ?? []).map((property) => columnOf(metadata.columns, property));
  if (returning.length) sql += ` RETURNING ${returning.map((column) => column.databaseName).join(', ')}`;
  const returned: unknown = await manager.query(sql, rows.flatMap((row) => columns.map((column) => stored(manager, column, row))));
  if (!returning.length) return [];
  return (returned as Array<Record<string, unknown>>).map((row) => Object.fromEntries(returning.map((column) => [column.propertyName, row[column.databaseName]])));
}

/** Deletes the rows whose primary key is one of `keys` (each giving every primary-key property), in one statement. */
export async function deleteRows<Entity extends ObjectLiteral>(manager: EntityManager, target: EntityTarget<Entity>, keys: ReadonlyArray<Partial<Entity>>): Promise<void> {
  if (keys.length === 0) return;
  const metadata = manager.connection.getMetadata(target);
  const primary = metadata.primaryColumns;
  const placeholder = placeholders(manager);
  const tuples = keys.map((_, row) => `(${primary.map((_, column) => placeholder(row * primary.length + column + 1)).join(', ')})`);
  // A row value compared with a VALUES list: one condition, however many keys (OR-joined ones nest as deep as they are many).
  await manager.query(
    `DELETE FROM ${metadata.tableName} WHERE (${primary.map((column) => column.databaseName).join(', ')}) IN (VALUES ${tuples.join(', ')})`,
    keys.flatMap((key) => primary.map((column) => stored(manager, column, key as Entity))),
  );
}

const placeholders = (manager: EntityManager): ((position: number) => string) => (manager.connection.options.type === 'postgres' ? (position) => `$${position}` : () => '?');

function columnOf(columns: readonly ColumnMetadata[], property: string): ColumnMetadata {
  const column = columns.find((candidate) => candidate.propertyName === property);
  if (!column) throw new Error(`no column for the property "${property}"`);
  return column;
}

/** A property's value as TypeORM would store it; undefined is NULL. */
const stored = (manager: EntityManager, column: ColumnMetadata, row: ObjectLiteral): unknown => manager.connection.driver.preparePersistentValue(column.getEntityValue(row), column) ?? null;
