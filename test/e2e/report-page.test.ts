import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { projectRoot } from '../../src/config';
import { CustomerEntity } from '../../src/domain/customer.entity';
import { generateReport } from '../../src/reports/generate-report';
import { REPORT_KINDS } from '../../src/reports/report-document';
import { renderReport } from '../../src/reports/renderers';
import { launchChromium } from '../support/browser';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';
import { DRIVERS } from '../support/databases';

describe.each(DRIVERS)('an HTML report in a browser, from %s', (driver) => {
  let candor: Harness;
  let browser: Browser;
  let subjectId: string;
  const artifacts = join(projectRoot(), 'test', 'artifacts');

  beforeAll(async () => {
    candor = await startCandor(driver);
    [{ id: subjectId }] = await candor.services.dataSource.getRepository(CustomerEntity).find({ order: { id: 'ASC' }, take: 1 });
    browser = await launchChromium();
    for (const [key, purpose] of [[KEYS.marketing, 'marketing.communications'], [KEYS.analytics, 'analytics.reporting'], [KEYS.support, 'essential.service']]) {
      await candor.query({ key, purpose, query: '{ customers(limit: 60) { email birthDate country } }' });
    }
    mkdirSync(artifacts, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await candor?.stop();
  });

  // Every kind renders offline without errors; those with figures over time or groups draw them (a subject's access report is tables).
  it.each(REPORT_KINDS.map((kind) => [kind]))('renders the %s report offline with its charts or tables and no console errors', async (kind) => {
    const document = await generateReport(candor.services, { kind, ...(kind === 'subject-access' ? { subjectId } : {}) }, { actor: { id: 'test', name: 'Test', team: 'Compliance' }, requestId: `page-${kind}` });
    const file = join(artifacts, `report-${kind}-${driver}.html`);
    writeFileSync(file, await renderReport(document, 'html'));
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('request', (request) => {
      if (!request.url().startsWith('file:')) problems.push(`external request: ${request.url()}`);
    });
    await page.goto(`file://${file}`);
    const charts = await page.$$eval('svg', (svgs) => svgs.map((svg) => ({ width: svg.getBoundingClientRect().width, bars: svg.querySelectorAll('rect').length, drawn: [...svg.querySelectorAll('rect')].filter((rect) => rect.getBoundingClientRect().width > 0).length })));
    if (kind === 'subject-access') expect(await page.$$eval('table tbody tr', (rows) => rows.filter((row) => row.getBoundingClientRect().height > 0).length)).toBeGreaterThan(0);
    else expect(charts.some((chart) => chart.width > 0 && chart.drawn > 0)).toBe(true);
    expect(await page.title()).toBe(document.title);
    await page.screenshot({ path: join(artifacts, `report-${kind}-${driver}.png`), fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });
});
