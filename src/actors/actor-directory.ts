import { createHmac, randomBytes } from 'node:crypto';
import { type DataSource, type EntityManager, In, IsNull, type Repository } from 'typeorm';
import { RECORDED_TEXT_LIMITS } from '../audit/audit-store';
import { badInput } from '../errors';
import { holdsHidden } from '../printable';
import { SecretWriteCheck } from '../storage/secret-fingerprint';
import { inTransaction } from '../storage/transactions';
import { ActorEntity } from './actor.entity';

export const DEMO_KEY_PREFIX = 'demo-';

export interface NewActor {
  readonly id: string;
  readonly name: string;
  readonly team: string;
  readonly roles: readonly string[];
  readonly purposes: readonly string[];
}

const newKey = () => `cnd_${randomBytes(24).toString('base64url')}`;

/** How a key is stored: HMAC-SHA-256 under the server secret, hex. */
const keyHash = (secret: string, key: string) => createHmac('sha256', secret).update(key, 'utf8').digest('hex');

/** The demo actors seeded outside production, with their fixed keys (listed in the README). */
/** The actor id the privacy page records a data subject's own reads and choices under (reserved). */
export const SUBJECT_ACTOR_ID = 'data-subject';

export const DEMO_ACTORS: ReadonlyArray<NewActor & { key: string }> = [
  { id: 'support-desk', key: 'demo-support-key', name: 'Support Desk', team: 'Customer Support', purposes: ['essential.service'], roles: [] },
  { id: 'campaign-manager', key: 'demo-marketing-key', name: 'Campaign Manager', team: 'Marketing', purposes: ['marketing.communications', 'marketing.advertising'], roles: [] },
  { id: 'analytics-warehouse', key: 'demo-analytics-key', name: 'Analytics Warehouse', team: 'Analytics', purposes: ['analytics.reporting', 'personalize.content', 'functional.service.improve'], roles: [] },
  { id: 'sponsor-sync', key: 'demo-partners-key', name: 'Sponsor Sync', team: 'Partnerships', purposes: ['third_party_sharing'], roles: [] },
  { id: 'compliance-office', key: 'demo-compliance-key', name: 'Compliance Office', team: 'Compliance', purposes: ['essential.legal_obligation'], roles: ['auditor', 'consent-manager'] },
];

/**
 * Actors and their API keys. Keys are stored only as HMAC-SHA-256 under the server secret, so a leaked
 * database does not leak usable keys, and lookups stay a single indexed equality match.
 */
export class ActorDirectory {
  private readonly secretCheck: SecretWriteCheck;

  constructor(
    private readonly dataSource: DataSource,
    private readonly secret: string,
    private readonly production: boolean,
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.secretCheck = new SecretWriteCheck(secret);
  }

  hashKey(key: string): string {
    return keyHash(this.secret, key);
  }

  /** The active actor holding `key`, or undefined. Demo keys never authenticate in production. */
  async authenticate(key: string): Promise<ActorEntity | undefined> {
    if (key === '' || (this.production && key.startsWith(DEMO_KEY_PREFIX))) return undefined;
    const actor = await this.dataSource.getRepository(ActorEntity).findOne({ where: { keyHash: this.hashKey(key), revokedAt: IsNull() } });
    return actor ?? undefined;
  }

  /** Stores a new actor; `key` defaults to a fresh random key. Returns the key (shown once). */
  async create(actor: NewActor, key = newKey()): Promise<string> {
    if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(actor.id)) throw badInput('actor ids are 2–63 lower-case letters, digits and dashes');
    // The log and the privacy page tell the subject's own reads by this id: no team may act under it.
    if (actor.id === SUBJECT_ACTOR_ID) throw badInput(`the actor id "${SUBJECT_ACTOR_ID}" is reserved for the data subjects themselves`);
    if (!actor.name.trim() || !actor.team.trim()) throw badInput('an actor needs a name and a team');
    // Reports, the log's readers and the CLI print names and teams as they are.
    // and reports group by team: a team with an invisible character would look like another and group apart.
    if (holdsHidden(actor.name) || holdsHidden(actor.team)) throw badInput('an actor’s name and team must be plain text in a line (they hold control or invisible characters)');
    if (actor.name.length > RECORDED_TEXT_LIMITS.actorName || actor.team.length > RECORDED_TEXT_LIMITS.actorTeam) {
      throw badInput(`an actor’s name is at most ${RECORDED_TEXT_LIMITS.actorName} characters, its team at most ${RECORDED_TEXT_LIMITS.actorTeam}`);
    }
    await this.writeKey(async (actors) => {
      if (await actors.existsBy({ id: actor.id })) throw badInput(`actor "${actor.id}" already exists`);
      await actors.insert({
        ...actor,
        roles: [...actor.roles],
        purposes: [...actor.purposes],
        keyHash: this.hashKey(key),
        createdAt: this.clock().toISOString(),
        revokedAt: null,
      });
    });
    return key;
  }

  /** Replaces the actor's key; the old one stops working on the next request. Returns the new key (shown once). */
  async rotate(id: string): Promise<string> {
    const key = newKey();
    await this.writeKey(async (actors) => {
      const { affected } = await actors.update({ id, revokedAt: IsNull() }, { keyHash: this.hashKey(key) });
      if (!affected) throw badInput(`no active actor "${id}"`);
    });
    return key;
  }

  /** Stores a key's HMAC in a transaction that first checks the HMAC's secret is still the database's. */
  private writeKey(write: (actors: Repository<ActorEntity>) => Promise<void>): Promise<void> {
    return inTransaction(this.dataSource, async (manager) => {
      await this.secretCheck.assertStillCurrent(manager);
      await write(manager.getRepository(ActorEntity));
    });
  }

  /** Revokes the actor: its key stops working on the next request. */
  async revoke(id: string): Promise<void> {
    const result = await this.dataSource.getRepository(ActorEntity).update({ id, revokedAt: IsNull() }, { revokedAt: this.clock().toISOString() });
    if (!result.affected) throw badInput(`no active actor "${id}"`);
  }

  /**
   * Gives every active actor a key under `nextSecret`, in the caller's transaction (`secret rotate`): an HMAC
   * cannot be carried over to another secret, so each gets a new key — except, outside production, a demo
   * actor still holding its published key, which keeps it. Revoked actors keep their old HMAC, which no key
   * matches under the new secret. Returns the keys, shown once.
   */
  async rekey(manager: EntityManager, nextSecret: string): Promise<Array<{ readonly id: string; readonly key: string; readonly demo: boolean }>> {
    const repository = manager.getRepository(ActorEntity);
    const keys = [];
    for (const actor of await repository.find({ where: { revokedAt: IsNull() }, order: { id: 'ASC' } })) {
      const demoKey = this.production ? undefined : DEMO_ACTORS.find((demo) => demo.id === actor.id && this.hashKey(demo.key) === actor.keyHash)?.key;
      const key = demoKey ?? newKey();
      await repository.update({ id: actor.id }, { keyHash: keyHash(nextSecret, key) });
      keys.push({ id: actor.id, key, demo: demoKey !== undefined });
    }
    return keys;
  }

  list(): Promise<ActorEntity[]> {
    return this.dataSource.getRepository(ActorEntity).find({ order: { id: 'ASC' } });
  }

  async seedDemoActors(): Promise<void> {
    for (const { key, ...actor } of DEMO_ACTORS) {
      if (!(await this.dataSource.getRepository(ActorEntity).existsBy({ id: actor.id }))) await this.create(actor, key);
    }
  }
}

/**
 * Whether a demo actor of the store still holds its published key as made under `secret`: the store was
 * seeded under that secret (the development one, when no CANDOR_SECRET was set).
 */
export async function holdsDemoKeysMadeWith(dataSource: DataSource | EntityManager, secret: string): Promise<boolean> {
  const seeded = await dataSource.getRepository(ActorEntity).findBy({ id: In(DEMO_ACTORS.map(({ id }) => id)) });
  return seeded.some((actor) => DEMO_ACTORS.some((demo) => demo.id === actor.id && keyHash(secret, demo.key) === actor.keyHash));
}
