import { checkSigningKey } from '../audit/checkpoints';
import { pseudonymBindingKey, rebindMappings } from '../audit/pseudonym-binding';
import { checkSecretStrength, DEVELOPMENT_SECRET, secretDerivedSigningSeed } from '../config';
import { badInput } from '../errors';
import type { CandorServices } from '../server/services';
import { replaceSecret } from '../storage/secret-fingerprint';
import { inTransaction } from '../storage/transactions';
import { type Output, recordCliOperation } from './audit.command';

/**
 * `candor secret rotate`: makes CANDOR_NEXT_SECRET the database's secret (a secret suspected exposed). What
 * is made under the secret cannot be carried over, so in one transaction the database takes the new secret's
 * fingerprint, the access log's pseudonym mappings are bound anew (each checked under the old secret first:
 * an altered one refuses the rotation) and every active actor a new key (outside production a demo actor keeps its published one);
 * the keys are printed once, after the run is recorded. Privacy links and `accessLog` cursors made before
 * stop opening, and `keyed_hash` masks change value.
 */
export async function secretRotate(services: CandorServices, output: Output): Promise<number> {
  const { config } = services;
  const next = config.nextSecret;
  if (next === undefined) throw badInput('CANDOR_NEXT_SECRET is required: the new secret (openssl rand -base64 32)');
  if (next === config.secret) throw badInput('CANDOR_NEXT_SECRET is the current secret: nothing to rotate');
  if (next === DEVELOPMENT_SECRET) throw badInput('CANDOR_NEXT_SECRET must not be the development secret: it is published');
  checkSecretStrength('CANDOR_NEXT_SECRET', next, config.production);
  // Without CANDOR_AUDIT_SIGNING_KEY the checkpoints are signed with a key made from the secret: under the new
  // one the servers would sign with another key, which the log's checkpoints do not hand over to (they would
  // refuse to start). The hand-over is its own command; it comes first.
  if (config.auditSigningSeed.equals(secretDerivedSigningSeed(config.secret)) && (await checkSigningKey(services.dataSource, services.checkpointSigner))) {
    throw badInput(
      "nothing rotated: the access log's checkpoints are signed with a key made from CANDOR_SECRET (CANDOR_AUDIT_SIGNING_KEY is unset), which the new secret would change — first hand signing over to a key of its own (CANDOR_AUDIT_NEXT_SIGNING_KEY=$(openssl rand -base64 32) npx candor audit checkpoint rotate), then run this with CANDOR_AUDIT_SIGNING_KEY set to that key",
    );
  }
  const keys = await inTransaction(services.dataSource, async (manager) => {
    await replaceSecret(manager, config.secret, next, services.clock());
    await rebindMappings(manager, services.pseudonymBindingKey, pseudonymBindingKey(next));
    return services.actors.rekey(manager, next);
  });
  await recordCliOperation(services, 'secret rotate', 'SECRET_ROTATED', {
    done: 'the secret was rotated and every active actor was given a new key; the keys are not shown',
    advice: 'once the log records again, rotate again (CANDOR_SECRET set to the new secret, CANDOR_NEXT_SECRET to another) to get keys',
  });
  const width = Math.max(0, ...keys.map(({ id }) => id.length));
  output.out(
    `rotated the secret: this database's actor keys, privacy links and accessLog cursors are made with CANDOR_NEXT_SECRET from now on.\n` +
      (keys.length ? `New keys (shown only now; Candor keeps just HMACs of them):\n${keys.map(({ id, key, demo }) => `  ${id.padEnd(width)}  ${key}${demo ? '  (its published demo key, kept)' : ''}\n`).join('')}` : 'No active actor: no key to hand out.\n') +
      'Next: set CANDOR_SECRET to the new secret on every instance and restart them (until then they still accept privacy links and accessLog cursors made with the old secret, and answer every key 401; one started with the old secret refuses to start), and hand each team its key. Privacy links and accessLog cursors issued before no longer open once restarted (issue links again); keyed_hash masks change value.\n',
  );
  return 0;
}
