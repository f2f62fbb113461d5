import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, projectRoot } from '../../src/config';
import { diffGovernance, type GovernanceDocument, parseGovernanceDocument, renderGovernanceDiff, SchemaDiffError } from '../../src/governance/schema-diff';
import { loadConfiguredTaxonomy } from '../../src/server/services';

// Fixture pairs derived from the real schema/governance.json (governance.base.json is a copy of it), each
// head edited the way a pull request would change the annotations or the taxonomy.
const fixtures = join(projectRoot(), 'test', 'fixtures', 'schema-diff');
const fixture = (name: string): GovernanceDocument => parseGovernanceDocument(readFileSync(join(fixtures, name), 'utf8'), name);
const taxonomy = loadConfiguredTaxonomy(loadConfig({}, {}));
const labels = { base: { ref: 'origin/main', file: 'schema/governance.json', commit: '1a2b3c4d5e6f708192a3' }, head: 'the annotations' };

describe('diffGovernance on real schema pairs', () => {
  it('finds nothing between a document and itself', () => {
    const diff = diffGovernance(fixture('governance.base.json'), fixture('governance.base.json'), taxonomy.categories);
    expect(diff).toEqual({ changes: [], reviewRequired: false });
    expect(renderGovernanceDiff(diff, labels, 'md')).toBe(
      [
        '## Candor schema diff: no privacy review needed',
        '',
        'Compared the annotations with `origin/main` (schema/governance.json at 1a2b3c4d5e6f).',
        '',
        'No governance changes: every field keeps its category, purposes, roles and data subject.',
        '',
      ].join('\n'),
    );
  });

  it('lists every change of the edited head, review items first, and requires review', () => {
    const diff = diffGovernance(fixture('governance.base.json'), fixture('governance.head.json'), taxonomy.categories);
    expect(diff.reviewRequired).toBe(true);
    expect(diff.changes).toEqual([
      // Needs review, by coordinate.
      { coordinate: 'Customer.accessibilityNeeds', kind: 'no_longer_special', review: true, category: 'user.health_and_medical' },
      { coordinate: 'Customer.country', kind: 'category_changed', review: true, category: 'user.location.precise', from: 'user.location.imprecise', to: 'user.location.precise' },
      { coordinate: 'Customer.email', kind: 'purposes_widened', review: true, category: 'user.contact.email', keys: ['analytics.reporting'] },
      { coordinate: 'Customer.favoriteGenres', kind: 'became_special', review: true, category: 'user.behavior' },
      { coordinate: 'Customer.loyaltyTier', kind: 'personal_field_added', review: true, category: 'user.behavior', keys: ['marketing.advertising'], special: false, sensitive: false },
      // [essential.service, essential.fraud_detection] → [essential]: widened to the parent, nothing narrowed.
      { coordinate: 'Customer.phone', kind: 'purposes_widened', review: true, category: 'user.contact.phone_number', keys: ['essential'] },
      { coordinate: 'Mutation.grantConsent', kind: 'roles_removed', review: true, category: 'system.operations', keys: ['consent-manager'] },
      { coordinate: 'Payment.cardLast4', kind: 'subject_changed', review: true, category: 'user.financial', from: 'customerId', to: 'payerId' },
      { coordinate: 'WatchEvent.watchedAt', kind: 'category_changed', review: true, category: 'system.operations', from: 'user.behavior', to: 'system.operations', note: 'no longer personal: released to every caller without a decision' },
      // Informational.
      { coordinate: 'Customer.country', kind: 'became_sensitive', review: false, category: 'user.location.precise' },
      { coordinate: 'Customer.createdAt', kind: 'field_removed', review: false, category: 'user.account', keys: ['essential.service', 'analytics.reporting'] },
      { coordinate: 'Customer.fullName', kind: 'purposes_narrowed', review: false, category: 'user.name', keys: ['personalize.content'] },
      { coordinate: 'Customer.id', kind: 'purposes_widened', review: false, category: 'system.operations', keys: ['analytics.reporting'], note: 'non-personal: released whatever the purpose' },
      { coordinate: 'Customer.tierUpdatedAt', kind: 'field_added', review: false, category: 'system.operations', keys: [] },
    ]);
  });

  it('reads the reverse of a widening as a narrowing only (coverage by dot boundary, as decide() uses)', () => {
    const diff = diffGovernance(fixture('governance.head.json'), fixture('governance.base.json'), taxonomy.categories);
    expect(diff.changes.filter((change) => change.coordinate === 'Customer.phone')).toEqual([
      { coordinate: 'Customer.phone', kind: 'purposes_narrowed', review: false, category: 'user.contact.phone_number', keys: ['essential'] },
    ]);
    // The field the head added is a removal seen from the other side; the one it removed is a new personal field.
    expect(diff.changes.find((change) => change.coordinate === 'Customer.createdAt')).toEqual(expect.objectContaining({ kind: 'personal_field_added', review: true }));
    expect(diff.changes.find((change) => change.coordinate === 'Mutation.grantConsent')).toEqual(expect.objectContaining({ kind: 'roles_added', review: false }));
  });

  it('takes personal/special/sensitive from the taxonomy when a base predates those flags', () => {
    const noFlags = fixture('governance.no-flags.json');
    expect([...noFlags.fields.values()].every((field) => field.special === undefined)).toBe(true);
    expect(diffGovernance(noFlags, fixture('governance.base.json'), taxonomy.categories).changes).toEqual([]);
    const changes = diffGovernance(noFlags, fixture('governance.head.json'), taxonomy.categories).changes;
    expect(changes.filter((change) => change.kind === 'became_special' || change.kind === 'no_longer_special').map((change) => change.coordinate)).toEqual(['Customer.accessibilityNeeds', 'Customer.favoriteGenres']);
  });

  it('compares masks when both documents carry them: a new masked purpose or another strategy needs review', () => {
    const diff = diffGovernance(fixture('governance.masks-base.json'), fixture('governance.masks-head.json'), taxonomy.categories);
    expect(diff.changes).toEqual([
      { coordinate: 'Customer.birthDate', kind: 'mask_purposes_added', review: true, category: 'user.demographic.date_of_birth', keys: ['personalize.content'], to: 'year' },
      { coordinate: 'Customer.email', kind: 'mask_strategy_changed', review: true, category: 'user.contact.email', from: 'partial_email', to: 'keyed_hash' },
      { coordinate: 'Customer.postalAddress', kind: 'mask_purposes_added', review: true, category: 'user.contact.address', keys: ['analytics.reporting'], to: 'city' },
      { coordinate: 'Customer.phone', kind: 'mask_purposes_removed', review: false, category: 'user.contact.phone_number', keys: ['analytics.reporting'], from: 'keyed_hash' },
    ]);
  });

  it('needs no review for informational changes alone', () => {
    const base = fixture('governance.base.json');
    const fields = new Map(base.fields);
    fields.delete('Customer.createdAt');
    const fullName = fields.get('Customer.fullName')!;
    fields.set('Customer.fullName', { ...fullName, purposes: fullName.purposes.filter((purpose) => purpose !== 'personalize.content') });
    const diff = diffGovernance(base, { ...base, fields }, taxonomy.categories);
    expect(diff.changes.map((change) => [change.coordinate, change.kind, change.review])).toEqual([
      ['Customer.createdAt', 'field_removed', false],
      ['Customer.fullName', 'purposes_narrowed', false],
    ]);
    expect(diff.reviewRequired).toBe(false);
  });

  it('assumes a field personal when neither the document nor the taxonomy knows its category, so it is reviewed', () => {
    const head = parseGovernanceDocument(JSON.stringify({ fields: { 'Lead.badge': { category: 'acme.unknown', purposes: [] } } }), 'head');
    expect(diffGovernance({ fields: new Map() }, head, taxonomy.categories).changes).toEqual([
      { coordinate: 'Lead.badge', kind: 'personal_field_added', review: true, category: 'acme.unknown', keys: [], special: false, sensitive: false },
    ]);
  });
});

describe('diffGovernance on what the taxonomy and the operations say', () => {
  const current = () => parseGovernanceDocument(readFileSync(join(projectRoot(), 'schema', 'governance.json'), 'utf8'), 'schema/governance.json');
  const edited = (edit: (fields: Map<string, any>, purposes: Map<string, any>) => void): GovernanceDocument => {
    const document = current();
    const fields = new Map(document.fields);
    const purposes = new Map(document.purposes!);
    edit(fields, purposes);
    return { ...document, fields, purposes };
  };
  const changesOf = (head: GovernanceDocument) => diffGovernance(current(), head, taxonomy.categories).changes.map(({ coordinate, kind, review, from, to, keys }) => ({ coordinate, kind, review, from, to, keys }));

  it('needs review when a purpose changes its legal basis: every field declared for it releases on another ground', () => {
    const head = edited((_fields, purposes) => purposes.set('marketing.communications', { ...purposes.get('marketing.communications'), legalBasis: 'legitimate_interests' }));
    expect(changesOf(head)).toEqual([{ coordinate: 'purpose marketing.communications', kind: 'legal_basis_changed', review: true, from: 'consent', to: 'legitimate_interests', keys: undefined }]);
  });

  it('needs review for a new requestable sub-purpose a personal field serves, and not for one none serves', () => {
    const head = edited((_fields, purposes) => {
      purposes.set('marketing.communications.partners', { legalBasis: 'consent', noticeVersion: 1, materialNotice: false });
      purposes.set('system.unused', { legalBasis: 'contract', noticeVersion: 1, materialNotice: false });
    });
    expect(changesOf(head)).toEqual([
      { coordinate: 'purpose marketing.communications.partners', kind: 'purpose_added', review: true, from: undefined, to: 'consent', keys: undefined },
      { coordinate: 'purpose system.unused', kind: 'purpose_added', review: false, from: undefined, to: 'contract', keys: undefined },
    ]);
  });

  it('needs review for a new purpose a personal field serves only masked', () => {
    const head = edited((fields, purposes) => {
      const email = fields.get('Customer.email');
      fields.set('Customer.email', { ...email, mask: { ...email.mask, purposes: [...email.mask.purposes, 'research'] } });
      purposes.set('research', { legalBasis: null, noticeVersion: 1, materialNotice: false });
      purposes.set('research.trends', { legalBasis: 'legitimate_interests', noticeVersion: 1, materialNotice: false });
    });
    expect(changesOf(head).filter((change) => change.coordinate === 'purpose research.trends')).toEqual([
      { coordinate: 'purpose research.trends', kind: 'purpose_added', review: true, from: undefined, to: 'legitimate_interests', keys: undefined },
    ]);
  });

  const now = new Date('2026-11-30T00:00:00.000Z');
  it.each<[string, string[] | undefined, string[] | undefined, { from: string; to: string } | undefined]>([
    ['the material change dropped (a later version without materialSince)', ['2026-06-01T00:00:00.000Z'], [], { from: 'now: renew consents given before 2026-06-01T00:00:00.000Z', to: 'no renewal' }],
    ['the material change moved earlier', ['2026-06-01T00:00:00.000Z'], ['2026-01-01T00:00:00.000Z'], { from: 'now: renew consents given before 2026-06-01T00:00:00.000Z', to: 'renew consents given before 2026-01-01T00:00:00.000Z' }],
    [
      'replaced by a material version dated later, without materialSince: uncovered until then',
      ['2026-06-01T00:00:00.000Z'],
      ['2027-03-01T00:00:00.000Z'],
      { from: 'now: renew consents given before 2026-06-01T00:00:00.000Z', to: 'no renewal' },
    ],
    ['a material version dated later that keeps materialSince (stricter)', ['2026-06-01T00:00:00.000Z'], ['2026-06-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z'], undefined],
    ['the material change moved later (stricter)', ['2026-06-01T00:00:00.000Z'], ['2026-09-01T00:00:00.000Z'], undefined],
    [
      "a future change of the base's dropped: relaxed from its date",
      ['2026-06-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z'],
      ['2026-06-01T00:00:00.000Z'],
      { from: 'from 2027-03-01T00:00:00.000Z: renew consents given before 2027-03-01T00:00:00.000Z', to: 'renew consents given before 2026-06-01T00:00:00.000Z' },
    ],
    ['a material change added (stricter)', [], ['2026-06-01T00:00:00.000Z'], undefined],
    ['a base written before the field existed', undefined, [], undefined],
  ])('consents given before a material notice change: %s', (_, before, after, relaxed) => {
    const renewal = (materialChanges: string[] | undefined) => edited((_fields, purposes) => purposes.set('marketing.communications', { ...purposes.get('marketing.communications'), materialChanges }));
    const changes = diffGovernance(renewal(before), renewal(after), taxonomy.categories, now).changes;
    expect(changes).toEqual(relaxed ? [{ coordinate: 'purpose marketing.communications', category: '—', kind: 'consent_renewal_relaxed', review: true, ...relaxed }] : []);
  });

  it('refuses materialChanges that are no times', () => {
    const document = JSON.parse(readFileSync(join(projectRoot(), 'schema', 'governance.json'), 'utf8'));
    document.purposes['marketing.communications'].materialChanges = ['last spring'];
    expect(() => parseGovernanceDocument(JSON.stringify(document), 'head.json')).toThrow('purpose "marketing.communications": "materialChanges" is not a list of times');
  });

  it("reads an operation's purposes as the ones it may be called for: dropping the last opens it to every purpose", () => {
    const head = edited((fields) => {
      fields.set('Query.accessLog', { ...fields.get('Query.accessLog'), purposes: [] });
      fields.set('Query.report', { ...fields.get('Query.report'), purposes: ['essential.legal_obligation', 'marketing'] });
    });
    expect(changesOf(head)).toEqual([
      { coordinate: 'Query.accessLog', kind: 'purposes_widened', review: true, from: undefined, to: undefined, keys: ['every purpose'] },
      { coordinate: 'Query.report', kind: 'purposes_widened', review: true, from: undefined, to: undefined, keys: ['marketing'] },
    ]);
  });

  it('needs review for every new operation (with the roles it requires) and relation, and for one that returns another type', () => {
    const head = edited((fields) => {
      fields.set('Customer.accessHistory', { category: 'system.operations', purposes: [], personal: false, special: false, sensitive: false, returns: 'AccessRecord' });
      fields.set('Customer.payments', { ...fields.get('Customer.payments'), returns: 'WatchEvent' });
      fields.set('Payment.currency', { ...fields.get('Payment.currency'), returns: 'AccessRecord' });
      // Another way into the access log, without the roles of the one that exists.
      fields.set('Query.accessLogExport', { category: 'system.operations', purposes: ['essential.legal_obligation'], personal: false, special: false, sensitive: false, root: true, returns: 'AccessLogConnection' });
      fields.set('Query.auditSummary', { ...fields.get('Query.auditIntegrity'), returns: 'AuditIntegrity' });
      fields.set('Query.customer', { ...fields.get('Query.customer'), returns: 'AccessLogConnection' });
    });
    expect(diffGovernance(current(), head, taxonomy.categories).changes.map(({ coordinate, kind, review, from, to, note }) => ({ coordinate, kind, review, from, to, note }))).toEqual([
      { coordinate: 'Customer.accessHistory', kind: 'relation_added', review: true, from: undefined, to: 'AccessRecord', note: undefined },
      { coordinate: 'Customer.payments', kind: 'returns_changed', review: true, from: 'Payment', to: 'WatchEvent', note: undefined },
      { coordinate: 'Payment.currency', kind: 'returns_changed', review: true, from: 'a scalar', to: 'AccessRecord', note: undefined },
      { coordinate: 'Query.accessLogExport', kind: 'operation_added', review: true, from: undefined, to: 'AccessLogConnection', note: 'no roles required' },
      { coordinate: 'Query.auditSummary', kind: 'operation_added', review: true, from: undefined, to: 'AuditIntegrity', note: 'roles: auditor' },
      { coordinate: 'Query.customer', kind: 'returns_changed', review: true, from: 'Customer', to: 'AccessLogConnection', note: undefined },
    ]);
  });

  it('compares what operations return and relations lead to only when both documents say it (older ones did not)', () => {
    const withoutReturns = edited((fields) => {
      for (const [coordinate, entry] of fields) if (entry.returns) fields.set(coordinate, { ...entry, returns: undefined });
    });
    expect(diffGovernance(withoutReturns, current(), taxonomy.categories).changes).toEqual([]);
  });

  it('needs review when an operation stops being recorded, and not when it starts', () => {
    const head = edited((fields) => {
      const { recordAs: _recordAs, ...unrecorded } = fields.get('Query.accessLog');
      fields.set('Query.accessLog', unrecorded);
      fields.set('Query.customer', { ...fields.get('Query.customer'), recordAs: 'CUSTOMER_LOOKED_UP' });
    });
    expect(changesOf(head)).toEqual([
      { coordinate: 'Query.accessLog', kind: 'recording_removed', review: true, from: 'ACCESS_LOG_READ', to: undefined, keys: undefined },
      { coordinate: 'Query.customer', kind: 'recording_added', review: false, from: undefined, to: 'CUSTOMER_LOOKED_UP', keys: undefined },
    ]);
  });

  it('needs review when a recorded change stops naming its data subject', () => {
    const head = edited((fields) => {
      const { subjectArgument: _subjectArgument, ...withoutSubject } = fields.get('Mutation.grantConsent');
      fields.set('Mutation.grantConsent', withoutSubject);
    });
    expect(changesOf(head)).toEqual([{ coordinate: 'Mutation.grantConsent', kind: 'recording_removed', review: true, from: 'input.subjectId', to: undefined, keys: undefined }]);
  });
});

describe('renderGovernanceDiff', () => {
  const diff = diffGovernance(fixture('governance.base.json'), fixture('governance.head.json'), taxonomy.categories);

  it('writes a pull-request comment: review table first, informational rows folded', () => {
    const markdown = renderGovernanceDiff(diff, labels, 'md');
    expect(markdown.startsWith('## Candor schema diff: privacy review required\n\nCompared the annotations with `origin/main` (schema/governance.json at 1a2b3c4d5e6f).\n\n9 changes need privacy review; 5 changes are informational.\n\n### Needs privacy review\n')).toBe(true);
    for (const row of [
      '| `Customer.loyaltyTier` | new personal field | `user.behavior` for `marketing.advertising` |',
      '| `Customer.country` | category changed | `user.location.imprecise` → `user.location.precise` |',
      '| `Customer.email` | purposes widened | adds `analytics.reporting` |',
      '| `Customer.favoriteGenres` | became special category (GDPR Art. 9) | `user.behavior`: explicit consent now required |',
      '| `Mutation.grantConsent` | roles no longer required | drops `consent-manager` |',
      '| `WatchEvent.watchedAt` | category changed | `user.behavior` → `system.operations` (no longer personal: released to every caller without a decision) |',
      '| `Customer.fullName` | purposes narrowed | drops `personalize.content` |',
    ]) {
      expect(markdown).toContain(`\n${row}\n`);
    }
    expect(markdown.indexOf('Customer.loyaltyTier')).toBeLessThan(markdown.indexOf('<summary>Informational (5)</summary>'));
    expect(markdown.indexOf('<summary>Informational (5)</summary>')).toBeLessThan(markdown.indexOf('Customer.fullName'));
    expect(markdown.endsWith('</details>\n')).toBe(true);
  });

  it('writes JSON with the counts and every change', () => {
    const json = JSON.parse(renderGovernanceDiff(diff, labels, 'json'));
    // Plain values a program reads, no Markdown in them.
    expect(json).toEqual({ base: { ref: 'origin/main', file: 'schema/governance.json', commit: '1a2b3c4d5e6f708192a3' }, head: 'the annotations', reviewRequired: true, counts: { review: 9, informational: 5 }, changes: JSON.parse(JSON.stringify(diff.changes)) });
  });

  it('keeps a hostile coordinate from breaking out of its table cell', () => {
    const head = parseGovernanceDocument(JSON.stringify({ fields: { 'Evil.a|b`c\nd': { category: 'user.name', purposes: ['essential.service'] } } }), 'head');
    const markdown = renderGovernanceDiff(diffGovernance({ fields: new Map() }, head, taxonomy.categories), labels, 'md');
    expect(markdown).toContain('| `Evil.a\\|b c d` | new personal field | `user.name` for `essential.service` |');
  });
});

describe('parseGovernanceDocument', () => {
  const read = (name: string) => readFileSync(join(fixtures, name), 'utf8');

  it.each([
    ['not-json.json', 'GOVERNANCE_NOT_JSON', /^GOVERNANCE_NOT_JSON: not-json\.json is not JSON \(.+\)$/],
    ['not-governance.json', 'GOVERNANCE_MALFORMED', /^GOVERNANCE_MALFORMED: not-governance\.json: there is no "fields" object; expected the schema\/governance\.json written by `npx candor schema emit`$/],
  ])('refuses %s with a coded one-line error', (name, code, message) => {
    let error: unknown;
    try {
      parseGovernanceDocument(read(name), name);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SchemaDiffError);
    expect((error as SchemaDiffError).code).toBe(code);
    expect((error as SchemaDiffError).message).toMatch(message);
  });

  it.each([
    [{ fields: { 'A.b': { purposes: [] } } }, 'field "A.b" has no category'],
    [{ fields: { 'A.b': { category: 'user.name', purposes: 'essential.service' } } }, 'field "A.b" has no list of purposes'],
    [{ fields: { 'A.b': { category: 'user.name', purposes: [], special: 'yes' } } }, 'field "A.b": "special" is not true or false'],
    [{ fields: { 'A.b': { category: 'user.name', purposes: [], roles: 'auditor' } } }, 'field "A.b": "roles" is not a list of role names'],
    [{ fields: { 'A.b': { category: 'user.name', purposes: [], mask: { strategy: 'year' } } } }, 'field "A.b": "mask" needs a strategy and a list of purposes'],
    [[], 'the document is not a JSON object'],
  ])('refuses a malformed field or document: %j', (document, problem) => {
    expect(() => parseGovernanceDocument(JSON.stringify(document), 'base.json')).toThrow(
      new SchemaDiffError('GOVERNANCE_MALFORMED', `base.json: ${problem}; expected the schema/governance.json written by \`npx candor schema emit\``),
    );
  });
});
