import { join } from 'node:path';
import { projectRoot } from '../../src/config';
import { covers, coveringKeys } from '../../src/taxonomy/keys';
import { loadFideslangKeys, loadTaxonomy, parseTaxonomy, TaxonomyError } from '../../src/taxonomy/taxonomy';

const root = projectRoot();
const fideslang = loadFideslangKeys(join(root, 'schema', 'fideslang'));
const taxonomy = loadTaxonomy(join(root, 'schema', 'taxonomy.yaml'), fideslang);

const REQUIRED_CATEGORIES = [
  'system.operations', 'user.name', 'user.contact.email', 'user.contact.phone_number', 'user.contact.address', 'user.account.username', 'user.unique_id',
  'user.device.ip_address', 'user.location.precise', 'user.location.imprecise', 'user.demographic.date_of_birth', 'user.demographic.gender',
  'user.demographic.race_ethnicity', 'user.demographic.religious_belief', 'user.demographic.political_opinion', 'user.demographic.sexual_orientation',
  'user.health_and_medical', 'user.biometric', 'user.government_id', 'user.financial', 'user.behavior', 'user.content.private', 'user.childrens',
  'user.privacy_preferences',
];
const SPECIAL = ['user.demographic.race_ethnicity', 'user.demographic.religious_belief', 'user.demographic.political_opinion', 'user.demographic.sexual_orientation', 'user.health_and_medical', 'user.biometric'];
const PURPOSE_BASES: Record<string, string> = {
  'essential.service': 'contract',
  'essential.service.payment_processing': 'contract',
  'essential.fraud_detection': 'legitimate_interests',
  'essential.legal_obligation': 'legal_obligation',
  'functional.service.improve': 'legitimate_interests',
  'analytics.reporting': 'legitimate_interests',
  'personalize.content': 'consent',
  'marketing.communications': 'consent',
  'marketing.advertising': 'consent',
  third_party_sharing: 'consent',
};

describe('schema/taxonomy.yaml', () => {
  it('has every required category, each described, with the GDPR Art. 9 special categories flagged', () => {
    for (const key of REQUIRED_CATEGORIES) expect(taxonomy.categories.get(key)?.description).toBeTruthy();
    const special = [...taxonomy.categories.values()].filter((category) => category.special).map((category) => category.key);
    expect(special.sort()).toEqual([...SPECIAL].sort());
    for (const key of SPECIAL) expect(taxonomy.categories.get(key)?.sensitive).toBe(true);
    expect(taxonomy.categories.get('system.operations')?.personal).toBe(false);
    expect(taxonomy.categories.get('user.contact.email')?.personal).toBe(true);
  });

  it('gives every required purpose its legal basis and a plain-language description; parents are grouping nodes', () => {
    for (const [key, basis] of Object.entries(PURPOSE_BASES)) {
      expect(taxonomy.purposes.get(key)).toEqual(expect.objectContaining({ legalBasis: basis, requestable: true, description: expect.any(String) }));
    }
    for (const parent of ['essential', 'marketing', 'analytics', 'personalize', 'functional']) expect(taxonomy.purposes.get(parent)?.requestable).toBe(false);
    expect([...taxonomy.legalBases.keys()].sort()).toEqual(['consent', 'contract', 'legal_obligation', 'legitimate_interests', 'public_task', 'vital_interests']);
  });

  it('uses only fideslang keys (none of ours is an extension today)', () => {
    for (const category of taxonomy.categories.values()) expect(category.extension || fideslang.categories.has(category.key)).toBe(true);
    for (const purpose of taxonomy.purposes.values()) expect(purpose.extension || fideslang.dataUses.has(purpose.key)).toBe(true);
  });
});

describe('taxonomy validation', () => {
  const base = () => ({
    version: 1,
    legalBases: Object.fromEntries(['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'].map((key) => [key, { description: key }])),
    categories: { user: { description: 'u' }, 'user.contact': { description: 'c' }, 'user.contact.email': { description: 'e' } } as Record<string, Record<string, unknown>>,
    purposes: { marketing: { description: 'm' }, 'marketing.communications': { description: 'mc', legalBasis: 'consent' } } as Record<string, Record<string, unknown>>,
  });
  const parse = (document: unknown) => parseTaxonomy(document, fideslang, 'test.yaml');

  it('accepts a minimal valid taxonomy', () => {
    expect(parse(base()).purposes.get('marketing.communications')?.legalBasis).toBe('consent');
  });

  it.each([
    ['a key that is not fideslang and not marked', (doc: ReturnType<typeof base>) => (doc.categories['user.contact.pager'] = { description: 'p' }), /category "user.contact.pager" is not a fideslang key/],
    ['an unknown parent', (doc: ReturnType<typeof base>) => (doc.purposes['sales.upsell'] = { description: 'x', legalBasis: 'consent', extension: true }), /purpose "sales.upsell" has no parent entry "sales"/],
    ['an unknown legal basis', (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications'].legalBasis = 'because'), /purpose "marketing.communications" has unknown legal basis "because"/],
    ['a missing description', (doc: ReturnType<typeof base>) => delete doc.categories['user.contact.email'].description, /category "user.contact.email" needs a non-empty `description`/],
    ['a fideslang key marked as extension', (doc: ReturnType<typeof base>) => (doc.categories['user.contact.email'].extension = true), /is a fideslang key and must not be marked/],
    ['a malformed key', (doc: ReturnType<typeof base>) => (doc.categories['User.Contact'] = { description: 'x', extension: true }), /category "User.Contact" is not a dotted lower-case key/],
    ['a missing legal basis entry', (doc: ReturnType<typeof base>) => delete doc.legalBases.public_task, /legal basis "public_task" is missing/],
  ])('rejects %s, naming the key', (_case, mutate, message) => {
    const document = base();
    mutate(document);
    expect(() => parse(document)).toThrow(TaxonomyError);
    expect(() => parse(document)).toThrow(message);
  });

  it('accepts a Candor extension key that says so in its own entry', () => {
    const document = base();
    document.categories['user.contact.pager'] = { description: 'A pager number.', extension: true };
    expect(parse(document).categories.get('user.contact.pager')?.extension).toBe(true);
  });
});

describe('coverage by dot boundary', () => {
  it.each([
    ['marketing', 'marketing', true],
    ['marketing', 'marketing.communications', true],
    ['marketing.communications', 'marketing', false],
    ['market', 'marketing', false],
    ['essential.service', 'essential.service.payment_processing', true],
    ['essential.service', 'essential.serviceX', false],
  ])('%s covers %s: %s', (key, candidate, expected) => {
    expect(covers(key, candidate)).toBe(expected);
  });

  it('lists the covering keys broadest first', () => {
    expect(coveringKeys('a.b.c')).toEqual(['a', 'a.b', 'a.b.c']);
  });
});
