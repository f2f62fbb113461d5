import { AuditBatchEntity, AuditEntryEntity } from '../../src/audit/audit.entities';
import { batchHash, decodeItems, encodeItems, recordDigest } from '../../src/audit/chain';
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

/**
 * The lone record of the batch ending at `seq`, rewritten (its reason made BAD_REQUEST) as an attacker with
 * database access would: its digest and its batch's hash computed again, so that the batch verifies on its
 * own. Returns the rows as they were, the forged batch hash, and the statements that store the forgery (the
 * batches after it, which chain from its hash, are the caller's).
 */
export async function forgeLoneRecord(candor: Harness, seq: number) {
  const batch = await candor.services.dataSource.getRepository(AuditBatchEntity).findOneByOrFail({ lastSeq: seq });
  const [entry] = await candor.services.dataSource.getRepository(AuditEntryEntity).find({ where: { batchId: batch.id } });
  const [item] = decodeItems(entry.items);
  const rewritten = { ...item, reason: 'BAD_REQUEST' };
  const digest = recordDigest(entry.seq, entry, rewritten);
  const forgedHash = batchHash(batch.prevHash, [digest]);
  const forgery: Array<[string, unknown[]]> = [
    ['UPDATE audit_entry SET items = ?, digests = ? WHERE seq = ?', [encodeItems([rewritten]), JSON.stringify([digest]), entry.seq]],
    ['UPDATE audit_batch SET hash = ? WHERE id = ?', [forgedHash, batch.id]],
  ];
  return { batch, entry, forgedHash, forgery };
}
