import type { Harness } from './candor-harness';

/**
 * Runs SQL behind Candor's back, as an attacker with database access would. On PostgreSQL the statements
 * run with the prune flag set, the only way past the append-only trigger.
 */
export async function tamper(candor: Harness, statements: Array<[string, unknown[]]>): Promise<void> {
  const runner = candor.services.dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    if (candor.driver === 'postgres') await runner.query("SET LOCAL candor.audit_prune = 'on'");
    for (const [sql, parameters] of statements) await runner.query(candor.driver === 'postgres' ? sql.replace(/\?/g, (_, offset, all) => `$${all.slice(0, offset).split('?').length}`) : sql, parameters);
    await runner.commitTransaction();
  } catch (error) {
    await runner.rollbackTransaction();
    throw error;
  } finally {
    await runner.release();
  }
}
