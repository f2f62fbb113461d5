import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from 'jose';
import { RECORD_VALUE_LIMITS, RECORDED_TEXT_LIMITS } from '../audit/audit-store';
import { holdsHidden } from '../printable';

/** Which claims name the actor, its team, its entitled purposes and its roles. */
export interface JwtClaimNames {
  readonly actorId: string;
  readonly name: string;
  readonly team: string;
  readonly purposes: string;
  readonly roles: string;
}

export interface JwtSettings {
  readonly issuer: string;
  readonly audience: string;
  /** A JWKS endpoint of the identity provider… */
  readonly jwksUrl?: string;
  /** …or one public key (PEM, SPKI). */
  readonly publicKeyPem?: string;
  readonly claims: JwtClaimNames;
  /**
   * The longest a token may live, in seconds (`CANDOR_JWT_MAX_AGE_SECONDS`, default 3600): it must carry `iat`,
   * not in the future, and is refused once older than this or when its `exp` is further than this from its
   * `iat`. Candor cannot revoke a JWT actor (the directory does not hold it): this bounds a leaked token's use.
   */
  readonly maxAgeSeconds: number;
}

/**
 * How far the identity provider's clock and Candor's may disagree. Claims are whole seconds: a provider a few
 * hundred milliseconds ahead stamps a fresh token's `iat` a second "in the future" at every second boundary,
 * and without a tolerance such tokens would be refused at random.
 */
const CLOCK_TOLERANCE_SECONDS = 5;

export const DEFAULT_JWT_CLAIMS: JwtClaimNames = { actorId: 'sub', name: 'name', team: 'team', purposes: 'purposes', roles: 'roles' };

/** Algorithms accepted: asymmetric only (an unsigned `alg: none` token is never accepted). */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

/**
 * Whether verifying failed because the key set could not be had: the endpoint did not answer in time, did
 * not answer 200 with JSON (jose's generic error), or could not be reached at all (not a jose error).
 */
function keysUnavailable(error: unknown): boolean {
  return !(error instanceof errors.JOSEError) || ['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID', 'ERR_JOSE_GENERIC'].includes(error.code);
}

export interface JwtActor {
  readonly id: string;
  readonly name: string;
  readonly team: string;
  readonly purposes: string[];
  readonly roles: string[];
}

/**
 * Verifies bearer JWTs from the company's identity provider (signature, issuer, audience, expiry, age) with jose,
 * and maps their claims to an actor. A token that fails is "not authenticated"; keys that cannot be fetched
 * are an outage the caller answers as such.
 */
export class JwtAuthenticator {
  private readonly key: KeyObject | ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly settings: JwtSettings) {
    if (settings.jwksUrl) this.key = createRemoteJWKSet(new URL(settings.jwksUrl));
    else if (settings.publicKeyPem) this.key = createPublicKey(settings.publicKeyPem);
    else throw new Error('JWT authentication needs a JWKS URL or a public key');
  }

  static looksLikeJwt(token: string): boolean {
    return /^[\w-]+\.[\w-]+\.[\w-]*$/.test(token);
  }

  async authenticate(token: string, now: Date): Promise<JwtActor | undefined> {
    let payload: JWTPayload;
    try {
      // jose checks `exp` only when a token has one: a token without it would never expire. `maxTokenAge`
      // requires `iat` and refuses one in the future or older than the maximum, each past the clock tolerance.
      ({ payload } = await jwtVerify(token, this.key as never, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        currentDate: now,
        requiredClaims: ['exp', 'iat'],
        maxTokenAge: this.settings.maxAgeSeconds,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (error) {
      // Keys that cannot be fetched are an outage, not a bad token: thrown (GOVERNANCE_UNAVAILABLE, 503). A
      // configured key is never unavailable: whatever fails under it (a token claiming an algorithm it is not
      // for throws a TypeError) is the token's fault.
      if (this.settings.jwksUrl && keysUnavailable(error)) throw error;
      return undefined;
    }
    // jose has no option for a lifetime: a token made to live longer than the maximum (`exp` in the year 2500)
    // is refused from its first use, rather than cut short by its age: a provider set to issue such tokens shows at once.
    if (payload.exp! - payload.iat! > this.settings.maxAgeSeconds) return undefined;
    const claims = this.settings.claims;
    const text = (name: string) => (typeof payload[name] === 'string' ? (payload[name] as string) : undefined);
    const list = (name: string) => {
      const value = payload[name];
      if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
      return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : [];
    };
    const id = text(claims.actorId);
    if (!id) return undefined;
    const actor = { id: `jwt:${id}`, name: text(claims.name) ?? id, team: text(claims.team) ?? 'unknown', purposes: list(claims.purposes), roles: list(claims.roles) };
    // Every request is logged under its actor: an actor the access log cannot record, or whose name reports and
    // the CLI could not print as it is (control characters, bidirectional overrides, invisible characters), is not authenticated.
    const tooLong = actor.id.length > RECORD_VALUE_LIMITS.actorId || actor.name.length > RECORDED_TEXT_LIMITS.actorName || actor.team.length > RECORDED_TEXT_LIMITS.actorTeam;
    if (tooLong || [actor.id, actor.name, actor.team].some(holdsHidden)) return undefined;
    return actor;
  }
}
