import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Both dialects: a checkpoint of kind `rotation` hands the log's signing over from one Ed25519 key to the
 * next (`npx candor audit checkpoint rotate`). It stores both public keys and the new key's signature
 * beside the old key's; the other kinds leave the three columns null.
 */
export class CheckpointKeyRotation1764540000000 implements MigrationInterface {
  name = 'CheckpointKeyRotation1764540000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const column of ['predecessor_key', 'successor_key', 'successor_signature']) await queryRunner.query(`ALTER TABLE audit_checkpoint ADD COLUMN ${column} varchar(128)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    // Without its keys a rotation could not be verified, nor could any checkpoint before it: refuse.
    const [rotation] = await queryRunner.query("SELECT id FROM audit_checkpoint WHERE kind = 'rotation' LIMIT 1");
    if (rotation) throw new Error(`the access log's signing key was rotated (checkpoint ${rotation.id}): undoing this migration would leave the checkpoints before the rotation unverifiable`);
    for (const column of ['successor_signature', 'successor_key', 'predecessor_key']) await queryRunner.query(`ALTER TABLE audit_checkpoint DROP COLUMN ${column}`);
  }
}
