import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { projectRoot } from '../../src/config';
import { createSubjectToken } from '../../src/privacy/subject-link';
import { launchChromium } from '../support/browser';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';
import { addCustomer } from '../support/subjects';

const SUBJECT = 'cus_0000_page';

describe.each(DRIVERS)('the privacy page in a browser (%s)', (driver) => {
  let candor: Harness;
  let browser: Browser;
  const artifacts = join(projectRoot(), 'test', 'artifacts');
  const link = (subjectId: string, expiresAt: Date) => `${candor.server.url.replace('/graphql', '')}/privacy?t=${createSubjectToken(candor.services.config.secret, subjectId, expiresAt)}`;
  const email = () => candor.query({ key: KEYS.marketing, purpose: 'marketing.communications', query: `query Campaign { customer(id: "${SUBJECT}") { email } }` });

  beforeAll(async () => {
    candor = await startCandor(driver);
    browser = await launchChromium();
    mkdirSync(artifacts, { recursive: true });
    await addCustomer(candor, SUBJECT);
    const granted = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `mutation { grantConsent(input: { subjectId: "${SUBJECT}", purpose: "marketing.communications", source: "signup-form" }) { id } }` });
    expect(granted.body.errors).toBeUndefined();
  });
  afterAll(async () => {
    await browser?.close();
    await candor?.stop();
  });

  it('lets the subject withdraw marketing consent, which the very next governed query honours; shows usage; downloads the data', async () => {
    const before = await email();
    expect(before.body.data).toEqual({ customer: { email: `${SUBJECT}@secret.example` } }); // an access made earlier, by Marketing

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    const response = await page.goto(link(SUBJECT, new Date(Date.now() + 3_600_000)));
    expect(response?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toBe('Your data and your choices');

    // Every element's id is its own (a label names its text box by it), and every text box has its label.
    const ids = await page.evaluate<string[]>('[...document.querySelectorAll("[id]")].map((element) => element.id)');
    expect(ids.length).toBe(new Set(ids).size);
    expect(await page.evaluate<number>('[...document.querySelectorAll("textarea")].filter((box) => box.labels.length !== 1).length')).toBe(0);

    // 1. what Candor holds, values visible to the subject
    const heldSection = page.locator('section[aria-labelledby="held"]');
    await expect(page.locator('#held + table caption').textContent()).resolves.toBe('Your account');
    await expect(page.locator('#held + table').textContent()).resolves.toContain(`${SUBJECT}@secret.example`);
    // Records of one kind a row each, their values together: the consent choices under a column per field.
    const consents = heldSection.locator('table').filter({ has: page.locator('caption', { hasText: 'Your consent choices' }) });
    // A column per field that holds a value in some entry (no grant here expires), in the entries' own order.
    expect(await consents.locator('thead th').allTextContents()).toEqual(['Kind', 'Purpose', 'Explicit', 'Source']);
    const consentRows = await consents.locator('tbody tr').allTextContents();
    expect(consentRows.length).toBeGreaterThan(0);
    // in words: what the subject did and the purpose as the page describes it, never a code
    expect(consentRows.some((row) => row.includes('Said yes') && row.includes('Sending you newsletters and offers by e-mail.'))).toBe(true);
    // as a person reads it: instants as dates, flags as yes or no, no type names
    expect(await consents.locator('tbody td').allTextContents()).toContain('no');
    const held = (await heldSection.textContent())!;
    expect(held).not.toMatch(/ConsentEntry|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}|\b(true|false)\b|\b(grant|withdraw|marketing\.communications)\b/);
    // 3. how the data was used: the Marketing access made above
    const usage = page.locator('section[aria-labelledby="usage"]');
    await expect(usage.textContent()).resolves.toContain('Marketing');
    await expect(usage.textContent()).resolves.toContain('Your e-mail address.');
    await page.screenshot({ path: join(artifacts, `privacy-desktop-${driver}.png`), fullPage: true });

    // 2. withdraw marketing consent with the keyboard
    const withdraw = page.getByRole('button', { name: 'Say no: Sending you newsletters and offers by e-mail.' });
    await withdraw.focus();
    await Promise.all([page.waitForURL(/done=/), page.keyboard.press('Enter')]);
    await expect(page.locator('[role="status"]').textContent()).resolves.toContain('Your choice is saved');
    await expect(page.locator('#purpose-marketing\\.communications .state').textContent()).resolves.toBe('You said no');
    // The consent choices the page holds, newest first: the no just said leads them.
    await expect(consents.locator('tbody tr').first().textContent()).resolves.toContain('Said no');

    const after = await email();
    expect(after.body.data).toEqual({ customer: { email: null } });
    expect(after.body.errors?.[0].extensions?.code).toBe('CONSENT_REQUIRED');

    // 4. receipts and download my data
    const receipts = await page.locator('section[aria-labelledby="receipts"] li').allTextContents();
    // Every time on the page in one form: the day in words and the time, in UTC.
    expect(receipts[0]).toMatch(/^\d{1,2} [A-Z][a-z]+ \d{4} at \d{2}:\d{2} UTC — /);
    expect(receipts.map((receipt) => receipt.replace(/^.* UTC — /, ''))).toEqual(['Said no: Sending you newsletters and offers by e-mail.', 'Said yes: Sending you newsletters and offers by e-mail.']);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download my data' }).click()]);
    const exported = JSON.parse(readFileSync((await download.path())!, 'utf8'));
    expect(exported.subjectId).toBe(SUBJECT);
    expect(exported.data['Customer.email'].values).toEqual([`${SUBJECT}@secret.example`]);
    expect(exported.consentHistory.map((event: { kind: string }) => event.kind)).toEqual(['grant', 'withdraw']);

    // 5. a question in the subject's own words, answered by a consent manager, shown on the page
    await page.locator('#purpose-third_party_sharing summary').click();
    await page.getByLabel('Your question about: Sharing data with our partners and sponsors (a "sale" under the CCPA).').fill('Why did Partnerships receive my country?');
    await Promise.all([page.waitForURL(/done=/), page.locator('#purpose-third_party_sharing button[type="submit"]').last().click()]);
    const inbox = await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: '{ inbox { id body subjectId } }' });
    const question = inbox.body.data!.inbox.find((message: { subjectId: string }) => message.subjectId === SUBJECT);
    expect(question.body).toBe('Why did Partnerships receive my country?');
    await candor.query({ key: KEYS.compliance, purpose: 'essential.legal_obligation', query: `mutation { answerQuestion(input: { id: "${question.id}", answer: "They did not: you never agreed." }) { id } }` });
    await page.reload();
    await expect(page.locator('section[aria-labelledby="messages"]').textContent()).resolves.toContain('They did not: you never agreed.');

    // every action on the page is in the ledger (source privacy-page) and in the access log
    const history = await candor.services.consent.history(SUBJECT);
    expect(history.at(-1)).toEqual(expect.objectContaining({ kind: 'withdraw', source: 'privacy-page' }));
    const recorded = await candor.services.accessLogReader.page({ subjectId: SUBJECT, reason: 'SUBJECT_REQUEST' }, 500);
    expect(recorded.edges.map((edge) => edge.node.operationName)).toEqual(expect.arrayContaining(['privacy-page view', 'privacy-page withdraw', 'privacy-page export', 'privacy-page question']));

    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(artifacts, `privacy-phone-${driver}.png`), fullPage: true });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    expect(problems).toEqual([]);
    await context.close();
  });

  it('refuses an expired link with a clear page and a 4xx status, and a tampered one too', async () => {
    const page = await browser.newPage();
    const expired = await page.goto(link(SUBJECT, new Date(Date.now() - 1_000)));
    expect(expired?.status()).toBe(410);
    await expect(page.locator('h1').textContent()).resolves.toBe('This link has expired');
    // Whom to ask for a new one: the controller named in the taxonomy.
    await expect(page.getByRole('link', { name: candor.services.taxonomy.controller.email }).getAttribute('href')).resolves.toBe(`mailto:${candor.services.taxonomy.controller.email}`);
    const tampered = await page.goto(link(SUBJECT, new Date(Date.now() + 60_000)).replace(/.$/, (last) => (last === 'A' ? 'B' : 'A')));
    expect(tampered?.status()).toBe(400);
    await expect(page.locator('h1').textContent()).resolves.toBe('This link is not valid');
    const unknownPath = await page.goto(link(SUBJECT, new Date(Date.now() + 60_000)).replace('/privacy?', '/privacy/elsewhere?'));
    expect([unknownPath?.status(), unknownPath?.headers()['content-type']]).toEqual([404, expect.stringMatching(/^text\/html/)]);
    await expect(page.locator('h1').textContent()).resolves.toBe('There is no such page');
    await page.close();
  });

  it('answers a question of only spaces with a page that says why and leads back', async () => {
    const page = await browser.newPage();
    await page.goto(link(SUBJECT, new Date(Date.now() + 600_000)));
    const [question] = await page.locator('details').all();
    await question.locator('summary').click();
    await question.locator('textarea').fill('   ');
    const [answer] = await Promise.all([page.waitForNavigation(), question.locator('button[type=submit]').click()]);
    expect(answer?.status()).toBe(400);
    await expect(page.locator('h1').textContent()).resolves.toBe('We could not do that');
    await expect(page.locator('p').first().textContent()).resolves.toBe('Please write your question.');
    await page.getByRole('link', { name: 'Back to your page' }).click();
    await expect(page.locator('h1').textContent()).resolves.toContain('Your data');
    await page.close();
  });
});
