import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { projectRoot } from '../../src/config';
import { generateReport } from '../../src/reports/generate-report';
import { renderReport } from '../../src/reports/renderers';
import { launchChromium } from '../support/browser';
import { type Harness, KEYS, startCandor } from '../support/candor-harness';

describe('an HTML report in a browser', () => {
  let candor: Harness;
  let browser: Browser;
  const artifacts = join(projectRoot(), 'test', 'artifacts');

  beforeAll(async () => {
    candor = await startCandor('sqlite');
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

  it.each(['purpose-usage', 'denials', 'ropa'])('renders the %s report offline with non-empty charts and no console errors', async (kind) => {
    const document = await generateReport(candor.services, { kind }, { actor: { id: 'test', name: 'Test', team: 'Compliance' }, requestId: `page-${kind}` });
    const file = join(artifacts, `report-${kind}.html`);
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
    expect(charts.length).toBeGreaterThan(0);
    expect(charts.some((chart) => chart.width > 0 && chart.drawn > 0)).toBe(true);
    expect(await page.title()).toBe(document.title);
    await page.screenshot({ path: join(artifacts, `report-${kind}.png`), fullPage: true });
    await page.close();
    expect(problems).toEqual([]);
  });
});
