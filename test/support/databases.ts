import { createScratchDatabase, type ScratchDatabase } from '../../bench/scratch-database';
import { DEFAULT_TEST_DATABASE_URL } from './global-setup';

export type Driver = 'sqlite' | 'postgres';

/** The drivers this run covers: SQLite always, PostgreSQL when global setup reached it. */
export const DRIVERS: Driver[] = process.env.CANDOR_TEST_POSTGRES === '1' ? ['sqlite', 'postgres'] : ['sqlite'];

export type TestDatabase = ScratchDatabase;

/** A fresh, empty database of its own: a temp SQLite file, or a new PostgreSQL database. */
export function createTestDatabase(driver: Driver): Promise<TestDatabase> {
  return createScratchDatabase(driver, process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL);
}
