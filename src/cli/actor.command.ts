import { badInput } from '../errors';
import { REJECT_MODE_ROLE } from '../policy/request-governance';
import type { CandorServices } from '../server/services';
import { type Output, recordCliOperation } from './audit.command';
import { usageOf } from './help';

export interface ActorArguments {
  readonly id?: string;
  readonly name?: string;
  readonly team?: string;
  readonly purposes?: string;
  readonly roles?: string;
}

const ROLES = ['auditor', 'consent-manager', REJECT_MODE_ROLE];

/**
 * The items of a comma-separated `--option`. An empty item (`a,,b`, a trailing comma) or one given twice is
 * refused, naming the option and the item: it is a typo, and the actor's purposes and roles are kept as given.
 */
function listOption(option: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const items = value.split(',').map((item) => item.trim());
  if (items.includes('')) throw badInput(`--${option} "${value}" holds an empty item: separate items with single commas`);
  const repeated = items.find((item, index) => items.indexOf(item) !== index);
  if (repeated !== undefined) throw badInput(`--${option} names "${repeated}" more than once`);
  return items;
}

/** `candor actor <create|list|rotate|revoke>`: keys are printed once and stored only as HMACs. */
export async function actorCommand(services: CandorServices, action: string | undefined, args: ActorArguments, output: Output): Promise<number> {
  const { actors, taxonomy } = services;
  switch (action) {
    case 'create': {
      if (!args.id || !args.name || !args.team) throw badInput(usageOf('actor', 'create'));
      const purposes = listOption('purposes', args.purposes);
      const roles = listOption('roles', args.roles);
      if (purposes.length === 0) throw badInput('--purposes needs at least one purpose key');
      for (const purpose of purposes) if (!taxonomy.purposes.has(purpose)) throw badInput(`unknown purpose "${purpose}"`);
      for (const role of roles) if (!ROLES.includes(role)) throw badInput(`unknown role "${role}": use ${ROLES.join(', ')}`);
      const key = await actors.create({ id: args.id, name: args.name, team: args.team, purposes, roles });
      await recordCliOperation(services, `actor create ${args.id}`, 'ACTOR_CREATED', { done: `actor ${args.id} was created (its key is not shown: rotate it once the log records again)` });
      output.out(`created actor ${args.id}. Its API key (shown only now; Candor keeps just an HMAC of it):\n${key}\n`);
      return 0;
    }
    case 'list': {
      for (const actor of await actors.list()) {
        output.out(`${actor.id.padEnd(24)} ${actor.revokedAt ? `revoked ${actor.revokedAt}` : 'active'}  ${actor.name} (${actor.team})  purposes: ${actor.purposes.join(', ')}${actor.roles.length ? `  roles: ${actor.roles.join(', ')}` : ''}\n`);
      }
      return 0;
    }
    case 'rotate': {
      if (!args.id) throw badInput(usageOf('actor', 'rotate'));
      const key = await actors.rotate(args.id);
      await recordCliOperation(services, `actor rotate ${args.id}`, 'ACTOR_KEY_ROTATED', { done: `the key of ${args.id} was rotated and the old one stopped working; the new one is not shown`, advice: 'rotate it again once the log records again, to get a key' });
      output.out(`rotated the key of ${args.id}; the old key stops working now. New key (shown only now):\n${key}\n`);
      return 0;
    }
    case 'revoke': {
      if (!args.id) throw badInput(usageOf('actor', 'revoke'));
      await actors.revoke(args.id);
      await recordCliOperation(services, `actor revoke ${args.id}`, 'ACTOR_REVOKED', { done: `${args.id} was revoked` });
      output.out(`revoked ${args.id}; its key stops working now\n`);
      return 0;
    }
    default:
      output.err(`candor: ${usageOf('actor')}\n`);
      return 2;
  }
}
