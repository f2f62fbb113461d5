import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { ConsentChange } from '../consent/consent-ledger';
import { inTransaction } from '../storage/transactions';
import { CustomerEntity } from './customer.entity';
import { PaymentEntity } from './payment.entity';
import { WatchEventEntity } from './watch-event.entity';

/** The seeded demo describes the platform as of this instant; seeded consent history predates it. */
export const DEMO_SEED_TIME = new Date('2026-01-15T09:00:00.000Z');
export const DEMO_CUSTOMER_COUNT = 200;

const FIRST_NAMES = ['Ada', 'Bruno', 'Chiara', 'Dmitri', 'Elif', 'Farah', 'Goran', 'Hana', 'Ines', 'Jonas', 'Kofi', 'Lena', 'Mateo', 'Nadia', 'Oskar', 'Priya', 'Quentin', 'Rosa', 'Sven', 'Tariq', 'Uma', 'Viktor', 'Wen', 'Yara', 'Zoltan'];
const LAST_NAMES = ['Andersen', 'Bianchi', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'García', 'Horvat', 'Ivanova', 'Jansen', 'Kowalski', 'Lindqvist', 'Moreau', 'Novak', 'Okafor', 'Petrov', 'Rossi', 'Schmidt', 'Tanaka', 'Varga'];
const COUNTRIES = ['DE', 'FR', 'IT', 'ES', 'NL', 'SE', 'PL', 'PT', 'IE', 'AT'];
const CITIES = ['Berlin', 'Lyon', 'Milano', 'Sevilla', 'Utrecht', 'Malmö', 'Kraków', 'Porto', 'Cork', 'Graz'];
const GENRES = ['documentary', 'drama', 'comedy', 'thriller', 'animation', 'sci-fi', 'romance', 'horror', 'nature', 'history'];
const TITLES = ['The Quiet Harbour', 'Northern Lights', 'Kitchen Confidential', 'Orbit', 'The Last Archive', 'Small Wonders', 'Deep Blue', 'Paper Towns', 'Night Shift', 'Wild Europe', 'The Long Road', 'Glass Houses'];
const ACCESSIBILITY = ['subtitles for the deaf and hard of hearing', 'audio description', 'reduced flashing content', 'sign-language interpretation'];

/** A small deterministic PRNG (mulberry32) so every seed produces the same platform. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Opaque, stable surrogate ids: nothing about the person can be read from them. */
function opaqueId(prefix: string, value: string): string {
  return `${prefix}_${createHash('sha256').update(`candor-demo:${value}`).digest('hex').slice(0, 16)}`;
}

export interface DemoData {
  readonly customers: CustomerEntity[];
  readonly payments: PaymentEntity[];
  readonly watchEvents: WatchEventEntity[];
  readonly consentChanges: ConsentChange[];
}

/** Builds the demo platform: 200 customers, their payments and viewing, and varied consent histories. */
export function buildDemoData(count = DEMO_CUSTOMER_COUNT): DemoData {
  const next = random(20261129);
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)];
  const chance = (probability: number) => next() < probability;
  const at = (daysBefore: number) => new Date(DEMO_SEED_TIME.getTime() - daysBefore * 86_400_000).toISOString();
  const customers: CustomerEntity[] = [];
  const payments: PaymentEntity[] = [];
  const watchEvents: WatchEventEntity[] = [];
  const consentChanges: ConsentChange[] = [];

  for (let n = 0; n < count; n++) {
    const id = opaqueId('cus', String(n));
    const first = pick(FIRST_NAMES);
    const last = pick(LAST_NAMES);
    const countryIndex = Math.floor(next() * COUNTRIES.length);
    customers.push(
      Object.assign(new CustomerEntity(), {
        id,
        fullName: `${first} ${last}`,
        displayName: `${first.toLowerCase()}${Math.floor(next() * 90 + 10)}`,
        email: `${first.toLowerCase()}.${last.toLowerCase().normalize('NFD').replace(/[^a-z]/g, '')}${n}@example.com`,
        phone: `+49 30 ${String(1_000_000 + Math.floor(next() * 8_999_999))}`,
        birthDate: `${1950 + Math.floor(next() * 55)}-${String(1 + Math.floor(next() * 12)).padStart(2, '0')}-${String(1 + Math.floor(next() * 28)).padStart(2, '0')}`,
        country: COUNTRIES[countryIndex],
        postalAddress: `${1 + Math.floor(next() * 120)} ${pick(['Main', 'Harbour', 'Park', 'Station'])} Street, ${CITIES[countryIndex]}`,
        favoriteGenres: [...new Set([pick(GENRES), pick(GENRES), pick(GENRES)])],
        accessibilityNeeds: chance(0.15) ? pick(ACCESSIBILITY) : null,
        createdAt: at(400 + Math.floor(next() * 300)),
      }),
    );
    const paymentCount = Math.floor(next() * 6);
    for (let p = 0; p < paymentCount; p++) {
      payments.push(
        Object.assign(new PaymentEntity(), {
          id: opaqueId('pay', `${n}-${p}`),
          customerId: id,
          amount: pick([7.99, 11.99, 17.99]),
          currency: 'EUR',
          paidAt: at(30 * p + Math.floor(next() * 5)),
          cardLast4: String(1000 + Math.floor(next() * 9000)),
        }),
      );
    }
    const watchCount = Math.floor(next() * 10);
    for (let w = 0; w < watchCount; w++) {
      watchEvents.push(
        Object.assign(new WatchEventEntity(), {
          id: opaqueId('wev', `${n}-${w}`),
          customerId: id,
          title: pick(TITLES),
          watchedAt: at(w * 3 + next() * 2),
          seconds: 300 + Math.floor(next() * 6000),
        }),
      );
    }

    // Consent histories: most say yes to something, some change their minds, a few object or restrict.
    const grant = (purpose: string, extra: Partial<ConsentChange> = {}) => consentChanges.push({ subjectId: id, kind: 'grant', purpose, source: 'signup-form', ...extra });
    if (chance(0.6)) {
      grant('marketing.communications', chance(0.15) ? { expiresAt: new Date('2026-06-30T00:00:00.000Z') } : {});
      if (chance(0.15)) consentChanges.push({ subjectId: id, kind: 'withdraw', purpose: 'marketing.communications', source: 'email-unsubscribe' });
    }
    if (chance(0.4)) grant('marketing.advertising');
    if (chance(0.5)) grant('personalize.content', { explicit: chance(0.5) });
    if (chance(0.2)) grant('third_party_sharing');
    if (customers[n].accessibilityNeeds && chance(0.6)) grant('essential.service', { explicit: true, source: 'accessibility-settings' });
    if (chance(0.1)) consentChanges.push({ subjectId: id, kind: 'object', purpose: 'analytics', source: 'support-call' });
    if (chance(0.04)) consentChanges.push({ subjectId: id, kind: 'restrict', source: 'support-call' });
  }
  return { customers, payments, watchEvents, consentChanges };
}

/** SQLite refuses very large multi-row inserts, so rows go in chunks. */
const INSERT_CHUNK = 200;

/** Inserts the demo domain rows (customers, payments, viewing) in one transaction. */
export async function insertDemoDomain(dataSource: DataSource, data: DemoData): Promise<void> {
  await inTransaction(dataSource, async (manager) => {
    for (const [entity, rows] of [
      [CustomerEntity, data.customers],
      [PaymentEntity, data.payments],
      [WatchEventEntity, data.watchEvents],
    ] as const) {
      for (let start = 0; start < rows.length; start += INSERT_CHUNK) await manager.getRepository(entity).insert(rows.slice(start, start + INSERT_CHUNK) as never);
    }
  });
}
