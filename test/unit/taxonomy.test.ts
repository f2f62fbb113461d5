import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../../src/config';
import { covers, coveringKeys } from '../../src/taxonomy/keys';
import { loadFideslangKeys, loadTaxonomy, parseTaxonomy, type Taxonomy, TaxonomyError } from '../../src/taxonomy/taxonomy';

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
    expect(taxonomy.categories.size).toBeGreaterThan(0);
    expect(taxonomy.purposes.size).toBeGreaterThan(0);
    for (const category of taxonomy.categories.values()) expect([category.key, Boolean(category.extension), fideslang.categories.has(category.key)]).toEqual([category.key, false, true]);
    for (const purpose of taxonomy.purposes.values()) expect([purpose.key, Boolean(purpose.extension), fideslang.dataUses.has(purpose.key)]).toEqual([purpose.key, false, true]);
  });

  it('declares the masks of issue #8, and only those', () => {
    const masks = Object.fromEntries([...taxonomy.categories.values()].filter((category) => category.mask).map((category) => [category.key, category.mask]));
    expect(masks).toEqual({
      'user.contact.email': { strategy: 'partial_email', purposes: ['analytics.reporting'] },
      'user.contact.phone_number': { strategy: 'keyed_hash', purposes: ['analytics.reporting'] },
      'user.demographic.date_of_birth': { strategy: 'year', purposes: ['marketing.advertising'] },
      'user.location.precise': { strategy: 'city', purposes: ['analytics.reporting'] },
    });
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

  it('keeps an earlier material notice change across a later version that was not material', () => {
    const doc = base();
    doc.purposes['marketing.communications'].notice = { version: 3, since: '2026-09-01T00:00:00Z', material: false, materialSince: '2026-06-01T00:00:00Z' };
    expect(parse(doc).purposes.get('marketing.communications')?.notice).toEqual({ version: 3, since: new Date('2026-09-01T00:00:00Z'), material: false, materialSince: new Date('2026-06-01T00:00:00Z') });
  });

  it.each([
    [
      'an earlier material change dated after this version',
      (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications'].notice = { version: 3, since: '2026-03-01T00:00:00Z', material: false, materialSince: '2026-04-01T00:00:00Z' }),
      /purpose "marketing\.communications": notice\.materialSince is an earlier version's change: it needs notice\.since, and must not come after it/,
    ],
    ['a key that is not fideslang and not marked', (doc: ReturnType<typeof base>) => (doc.categories['user.contact.pager'] = { description: 'p' }), /category "user.contact.pager" is not a fideslang key/],
    [
      'a fideslang key since deprecated, not marked',
      (doc: ReturnType<typeof base>) => Object.assign(doc.purposes, { personalize: { description: 'p' }, 'personalize.profiling': { description: 'pp', legalBasis: 'consent' } }),
      /purpose "personalize\.profiling" is a deprecated fideslang key, replaced by "personalize\.content\.profiling": use that/,
    ],
    ['an unknown parent', (doc: ReturnType<typeof base>) => (doc.purposes['sales.upsell'] = { description: 'x', legalBasis: 'consent', extension: true }), /purpose "sales.upsell" has no parent entry "sales"/],
    ['an unknown legal basis', (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications'].legalBasis = 'because'), /purpose "marketing.communications" has unknown legal basis "because"/],
    ['a missing description', (doc: ReturnType<typeof base>) => delete doc.categories['user.contact.email'].description, /category "user.contact.email" needs a non-empty `description`/],
    ['a fideslang key marked as extension', (doc: ReturnType<typeof base>) => (doc.categories['user.contact.email'].extension = true), /is a fideslang key and must not be marked/],
    ['a malformed key', (doc: ReturnType<typeof base>) => (doc.categories['User.Contact'] = { description: 'x', extension: true }), /category "User.Contact" is not a dotted lower-case key/],
    ['a missing legal basis entry', (doc: ReturnType<typeof base>) => delete doc.legalBases.public_task, /legal basis "public_task" is missing/],
    [
      'an extension sub-purpose on another basis than its parent (a consent purpose widened to legitimate interests)',
      (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications.partners'] = { description: 'p', legalBasis: 'legitimate_interests', extension: true }),
      /purpose "marketing.communications.partners" rests on legitimate_interests, but its parent purpose "marketing.communications" on consent/,
    ],
    [
      'a fideslang sub-purpose on another basis than its parent, in the base file too',
      (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications.email'] = { description: 'e', legalBasis: 'legitimate_interests' }),
      /purpose "marketing.communications.email" rests on legitimate_interests, but its parent purpose "marketing.communications" on consent: a sub-purpose keeps the legal basis/,
    ],
    [
      'a special category that is not personal data (released whatever the purpose)',
      (doc: ReturnType<typeof base>) => Object.assign(doc.categories, { system: { description: 's' }, 'system.health': { description: 'h', special: true, extension: true } }),
      /category "system.health" is marked special but is not personal data/,
    ],
    [
      'a top-level extension category, which would be neither personal nor declared not to be',
      (doc: ReturnType<typeof base>) => Object.assign(doc.categories, { patient: { description: 'p', extension: true }, 'patient.diagnosis': { description: 'd', extension: true } }),
      /category "patient" is a new top-level category: extension categories go under "user" \(personal data\) or "system"/,
    ],
    [
      'a notice on a grouping purpose, which renewal would never read',
      (doc: ReturnType<typeof base>) => (doc.purposes.marketing.notice = { version: 2, since: '2026-03-01', material: true }),
      /purpose "marketing" has a notice but no legal basis/,
    ],
    [
      'a notice date that is no date (2026-02-30 would be 2 March)',
      (doc: ReturnType<typeof base>) => (doc.purposes['marketing.communications'].notice = { version: 2, since: '2026-02-30', material: true }),
      /purpose "marketing.communications": notice.since must be an ISO-8601 date/,
    ],
  ])('rejects %s, naming the key', (_case, mutate, message) => {
    const document = base();
    mutate(document);
    expect(() => parse(document)).toThrow(TaxonomyError);
    expect(() => parse(document)).toThrow(message);
  });

  it('accepts an extension sub-purpose on the basis of its parent', () => {
    const document = base();
    document.purposes['marketing.communications.newsletter'] = { description: 'n', legalBasis: 'consent', extension: true };
    expect(parse(document).purposes.get('marketing.communications.newsletter')?.legalBasis).toBe('consent');
  });

  it('hands sensitive and special down to sub-categories, whatever their own entries say', () => {
    const document = base();
    Object.assign(document.categories, {
      'user.financial': { description: 'f', sensitive: true },
      'user.financial.bank_account': { description: 'b' },
      'user.health_and_medical': { description: 'h', special: true },
      'user.health_and_medical.genetic': { description: 'g' },
    });
    const categories = parse(document).categories;
    expect(categories.get('user.financial.bank_account')).toEqual(expect.objectContaining({ sensitive: true, special: false }));
    expect(categories.get('user.health_and_medical.genetic')).toEqual(expect.objectContaining({ sensitive: true, special: true }));
  });

  it('accepts a Candor extension key that says so in its own entry', () => {
    const document = base();
    document.categories['user.contact.pager'] = { description: 'A pager number.', extension: true };
    expect(parse(document).categories.get('user.contact.pager')?.extension).toBe(true);
  });

  it.each([
    ['a misspelt flag, which would silently drop a protection', (doc: ReturnType<typeof base>) => (doc.categories['user.contact.email'].sensitve = true), 'test.yaml: category "user.contact.email" has unknown field `sensitve` (allowed: description, special, sensitive, extension, mask)'],
    ['an unknown purpose field', (doc: ReturnType<typeof base>) => (doc.purposes.marketing.legalbasis = 'consent'), 'test.yaml: purpose "marketing" has unknown field `legalbasis` (allowed: description, legalBasis, benefit, extension, notice)'],
    ['an unknown top-level section', (doc: ReturnType<typeof base>) => Object.assign(doc, { purpose: {} }), 'test.yaml: the taxonomy has unknown field `purpose` (allowed: version, controller, legalBases, categories, purposes, extensionFiles)'],
  ])('refuses %s', (_case, mutate, message) => {
    const document = base();
    mutate(document);
    expect(() => parse(document)).toThrow(new TaxonomyError(message));
  });
});

describe('masks in the taxonomy', () => {
  const document = (mask: unknown, key = 'user.contact.email') => ({
    version: 1,
    legalBases: Object.fromEntries(['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task', 'legitimate_interests'].map((basis) => [basis, { description: basis }])),
    categories: {
      system: { description: 's' },
      'system.operations': { description: 'o' },
      user: { description: 'u' },
      'user.contact': { description: 'c' },
      'user.contact.email': { description: 'e' },
      'user.contact.email.work': { description: 'w', extension: true },
      // Both keys the cases use are fideslang keys, so no `extension` flag is needed.
      [key]: { description: 'the masked one', mask },
    },
    purposes: { analytics: { description: 'a' }, 'analytics.reporting': { description: 'r', legalBasis: 'legitimate_interests' } },
  });
  const parse = (mask: unknown, key?: string) => parseTaxonomy(document(mask, key), fideslang, 'masks.yaml');

  it('exposes a valid mask on the category, frozen, and does not hand it down to sub-categories (a strategy fits one value format)', () => {
    const parsed = parse({ strategy: 'partial_email', purposes: ['analytics.reporting'] });
    expect(parsed.categories.get('user.contact.email')?.mask).toEqual({ strategy: 'partial_email', purposes: ['analytics.reporting'] });
    expect(Object.isFrozen(parsed.categories.get('user.contact.email')?.mask)).toBe(true);
    // Both categories are there (a missing one would have no mask either), without a mask of their own.
    expect(parsed.categories.get('user.contact.email.work')).toEqual(expect.objectContaining({ key: 'user.contact.email.work' }));
    expect(parsed.categories.get('user.contact')).toEqual(expect.objectContaining({ key: 'user.contact' }));
    expect(parsed.categories.get('user.contact.email.work')?.mask).toBeUndefined();
    expect(parsed.categories.get('user.contact')?.mask).toBeUndefined();
  });

  it('accepts a grouping purpose, which covers its sub-purposes', () => {
    expect(parse({ strategy: 'keyed_hash', purposes: ['analytics'] }).categories.get('user.contact.email')?.mask?.purposes).toEqual(['analytics']);
  });

  it.each([
    ['an unknown strategy', { strategy: 'redact', purposes: ['analytics.reporting'] }, undefined, 'masks.yaml: category "user.contact.email": mask.strategy must be one of partial_email, year, city, keyed_hash, got "redact"'],
    ['a missing strategy', { purposes: ['analytics.reporting'] }, undefined, 'masks.yaml: category "user.contact.email": mask.strategy must be one of partial_email, year, city, keyed_hash, got none'],
    ['an unknown purpose', { strategy: 'year', purposes: ['marketing.advertising'] }, undefined, 'masks.yaml: category "user.contact.email" masks for "marketing.advertising", which is not a purpose of the taxonomy'],
    ['a purpose listed twice', { strategy: 'year', purposes: ['analytics.reporting', 'analytics.reporting'] }, undefined, 'masks.yaml: category "user.contact.email" lists mask purpose "analytics.reporting" twice'],
    ['no purposes', { strategy: 'year', purposes: [] }, undefined, 'masks.yaml: category "user.contact.email": mask.purposes must be a non-empty list of purpose keys'],
    ['a mask that is not a mapping', 'partial_email', undefined, 'masks.yaml: category "user.contact.email": `mask` must be a mapping with strategy and purposes'],
    ['an unknown mask field', { strategy: 'year', purposes: ['analytics.reporting'], for: 'everyone' }, undefined, 'masks.yaml: category "user.contact.email" mask has unknown field `for` (allowed: strategy, purposes)'],
    ['a mask on a non-personal category', { strategy: 'keyed_hash', purposes: ['analytics.reporting'] }, 'system.operations', 'masks.yaml: category "system.operations" is not personal data: only categories under "user" may declare a mask'],
  ])('refuses %s, naming the category', (_case, mask, key, message) => {
    expect(() => parse(mask, key)).toThrow(new TaxonomyError(message));
  });
});

describe('taxonomy extension files', () => {
  const fixtures = join(root, 'test', 'fixtures', 'taxonomy');
  const acmeBase = join(fixtures, 'acme-base.yaml');
  const invalid = (name: string) => join(fixtures, 'invalid', name);
  const loadError = (load: () => Taxonomy): string => {
    try {
      load();
    } catch (error) {
      expect(error).toBeInstanceOf(TaxonomyError);
      return (error as Error).message;
    }
    throw new Error('the taxonomy loaded, but it should have been refused');
  };

  it('loads the extension files the base names, relative to the base file, as extensions of the base', () => {
    const acme = loadTaxonomy(acmeBase, fideslang);
    expect(acme.version).toBe(3);
    expect(acme.categories.get('user.behavior.loyalty.tier')).toEqual({
      key: 'user.behavior.loyalty.tier',
      description: "The person's loyalty tier (bronze, silver, gold).",
      personal: true,
      special: false,
      sensitive: false,
      extension: true,
      mask: { strategy: 'keyed_hash', purposes: ['analytics.reporting', 'marketing.loyalty'] },
    });
    // Inherited from the base parent, as within one file: an extension cannot escape Art. 9.
    expect(acme.categories.get('user.health_and_medical.fitness_goals')).toEqual(expect.objectContaining({ special: true, sensitive: true, extension: true }));
    expect(acme.purposes.get('marketing.loyalty')).toEqual(expect.objectContaining({ requestable: false, extension: true }));
    expect(acme.purposes.get('marketing.loyalty.rewards')).toEqual(expect.objectContaining({ legalBasis: 'contract', requestable: true, extension: true }));
    // From extensions/acme-partners.yaml, under a parent that acme-loyalty.yaml defines.
    expect(acme.purposes.get('marketing.loyalty.partner_offers')).toEqual(expect.objectContaining({ legalBasis: 'consent', extension: true }));
    expect(acme.categories.get('user.contact.email')).toEqual(expect.objectContaining({ extension: false, mask: { strategy: 'partial_email', purposes: ['analytics.reporting'] } }));
  });

  it('takes more extension files from the caller, after the named ones; a file named twice is read once', () => {
    const acme = loadTaxonomy(acmeBase, fideslang, { extensions: [join(fixtures, 'acme-loyalty.yaml'), invalid('later-parent.yaml')] });
    expect(acme.categories.get('user.behavior.streaks')?.extension).toBe(true);
    expect(acme.purposes.get('marketing.loyalty.rewards')?.extension).toBe(true);
  });

  it('extends the shipped taxonomy the same way', () => {
    const extended = loadTaxonomy(join(root, 'schema', 'taxonomy.yaml'), fideslang, { extensions: [invalid('later-parent.yaml')] });
    expect(extended.categories.get('user.behavior.streaks')).toEqual(expect.objectContaining({ personal: true, extension: true }));
    expect(extended.categories.size).toBe(taxonomy.categories.size + 1);
  });

  it.each([
    ['unknown-parent.yaml', 'category "user.pets.name" has no parent entry "user.pets" in the base taxonomy or any extension file'],
    ['redefines-base-key.yaml', `category "user.contact.email" is already defined in ${acmeBase}; an extension file may add keys, never redefine or rename an existing one`],
    ['redefines-extension-key.yaml', `purpose "marketing.loyalty" is already defined in ${join(fixtures, 'acme-loyalty.yaml')}; an extension file may add keys, never redefine or rename an existing one`],
    ['renames-key.yaml', 'category "user.contact.work_email" has unknown field `renames` (allowed: description, special, sensitive, extension, mask)'],
    ['missing-extension-flag.yaml', 'category "user.behavior.streaks" must say `extension: true`, as every entry of an extension file does'],
    ['fideslang-key.yaml', 'category "user.contact.fax_number" is a fideslang key and must not be marked as an extension; fideslang keys belong in the base taxonomy'],
    ['unknown-legal-basis.yaml', 'purpose "marketing.loyalty.surveys" has unknown legal basis "goodwill"'],
    ['adds-legal-basis.yaml', 'a taxonomy extension file has unknown field `legalBases` (allowed: categories, purposes)'],
    ['mask-non-personal.yaml', 'category "system.operations.loyalty_ledger" is not personal data: only categories under "user" may declare a mask'],
    ['mask-unknown-purpose.yaml', 'category "user.behavior.streaks" masks for "marketing.sms_blast", which is not a purpose of the taxonomy'],
  ])('refuses %s, naming the file and the key', (file, message) => {
    expect(loadError(() => loadTaxonomy(acmeBase, fideslang, { extensions: [invalid(file)] }))).toBe(`${invalid(file)}: ${message}`);
  });

  it('refuses a child whose parent only a later extension file defines, naming that file', () => {
    expect(loadError(() => loadTaxonomy(acmeBase, fideslang, { extensions: [invalid('later-child.yaml'), invalid('later-parent.yaml')] }))).toBe(
      `${invalid('later-child.yaml')}: category "user.behavior.streaks.weekly" must come after its parent "user.behavior.streaks" (defined in ${invalid('later-parent.yaml')}, which must be loaded first)`,
    );
  });

  it('refuses a named extension file that cannot be read, naming it', () => {
    expect(loadError(() => loadTaxonomy(invalid('base-names-missing-extension.yaml'), fideslang))).toMatch(
      new RegExp(`^${escapeRegExp(invalid('does-not-exist.yaml'))}: cannot read taxonomy extension: ENOENT`),
    );
  });

  it('reports a YAML syntax error on one line', () => {
    const message = loadError(() => loadTaxonomy(acmeBase, fideslang, { extensions: [invalid('not-yaml.yaml')] }));
    expect(message).toMatch(new RegExp(`^${escapeRegExp(invalid('not-yaml.yaml'))}: cannot read taxonomy extension: .+ at line \\d+, column \\d+$`));
    expect(message).not.toContain('\n');
  });

  it('refuses a base that names itself as an extension', () => {
    expect(loadError(() => loadTaxonomy(acmeBase, fideslang, { extensions: [acmeBase] }))).toBe(`${acmeBase}: the base taxonomy cannot be one of its own extension files`);
  });

  it('refuses an `extensionFiles` that is not a list of paths', () => {
    const document = { ...(loadTaxonomyDocument(acmeBase) as object), extensionFiles: 'acme-loyalty.yaml' };
    expect(() => parseTaxonomy(document, fideslang, 'acme-base.yaml')).toThrow(new TaxonomyError('acme-base.yaml: `extensionFiles` must be a list of file paths, relative to this file'));
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function loadTaxonomyDocument(file: string): unknown {
  return parseYaml(readFileSync(file, 'utf8'));
}

describe('coverage by dot boundary', () => {
  it.each([
    ['marketing', 'marketing', true],
    ['marketing', 'marketing.communications', true],
    ['marketing.communications', 'marketing', false],
    ['market', 'marketing', false],
    ['essential.service', 'essential.service.payment_processing', true],
    ['essential.service', 'essential.serviceX', false],
    ['analytics', 'marketing.analytics', false], // a key elsewhere in the candidate, a dot after as many characters
  ])('%s covers %s: %s', (key, candidate, expected) => {
    expect(covers(key, candidate)).toBe(expected);
  });

  it('lists the covering keys broadest first', () => {
    expect(coveringKeys('a.b.c')).toEqual(['a', 'a.b', 'a.b.c']);
  });
});
