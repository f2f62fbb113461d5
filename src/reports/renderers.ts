import PDFDocument from 'pdfkit';
import { stringify } from 'csv-stringify/sync';
import type { BarChart, Cell, ReportDocument, ReportTable } from './report-document';

export const REPORT_FORMATS = ['json', 'csv', 'html', 'pdf', 'md'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Renders a report; every format carries the parameters, generation time and log head it was computed from. */
export async function renderReport(document: ReportDocument, format: ReportFormat): Promise<Buffer> {
  switch (format) {
    case 'json':
      return Buffer.from(JSON.stringify(metadata(document, { summary: document.summary, data: document.data }), null, 2) + '\n');
    case 'csv':
      return Buffer.from(renderCsv(document));
    case 'md':
      return Buffer.from(renderMarkdown(document));
    case 'html':
      return Buffer.from(renderHtml(document));
    case 'pdf':
      return renderPdf(document);
  }
}

function metadata(document: ReportDocument, rest: Record<string, unknown>) {
  return { report: document.kind, title: document.title, parameters: document.parameters, generatedAt: document.generatedAt, accessLogHead: document.logHead, ...rest };
}

const allTables = (document: ReportDocument) => document.sections.flatMap((section) => section.tables);
const text = (cell: Cell) => (cell === null ? '' : String(cell));
const parameterLine = (document: ReportDocument) =>
  [`subject: ${document.parameters.subjectId ?? '—'}`, `from: ${document.parameters.from ?? 'the beginning'}`, `to: ${document.parameters.to ?? 'now'}`].join(' · ');
const provenance = (document: ReportDocument) => `Generated ${document.generatedAt} from the access log through seq ${document.logHead.seq} (head hash ${document.logHead.hash}).`;

/**
 * The primary table, through a CSV library (quoting and escaping are its job, not ours). Text that a
 * spreadsheet would run as a formula (=, +, -, @, tab, CR first: an actor's name from a JWT, say) is
 * quoted with a leading apostrophe; numbers stay numbers.
 */
function renderCsv(document: ReportDocument): string {
  const table = allTables(document).find((candidate) => candidate.title === document.primaryTable) ?? allTables(document)[0];
  return stringify([[...table.columns], ...table.rows.map((row) => row.map((cell) => (typeof cell === 'number' ? cell : text(cell))))], { escape_formulas: true });
}

function renderMarkdown(document: ReportDocument): string {
  // Markdown viewers render inline HTML: a value must not become markup (nor a line break end its row).
  // Markdown syntax in a value (a link or an image in an actor's name from a JWT) is written as text.
  const escape = (cell: Cell) =>
    escapeHtml(text(cell))
      .replace(/[\\`*_[\]()!|]/g, (character) => `\\${character}`)
      .replace(/[\r\n]/g, ' ');
  const table = (t: ReportTable) =>
    t.rows.length === 0 ? `_${t.title}: none._\n` : [`**${t.title}**`, '', `| ${t.columns.join(' | ')} |`, `| ${t.columns.map(() => '---').join(' | ')} |`, ...t.rows.map((row) => `| ${row.map(escape).join(' | ')} |`), ''].join('\n');
  return [
    `# ${document.title}`,
    '',
    parameterLine(document),
    '',
    provenance(document),
    '',
    ...document.summary.map((line) => `- ${line}`),
    '',
    ...document.sections.flatMap((section) => [`## ${section.title}`, '', ...(section.text ? [section.text, ''] : []), ...section.tables.map(table)]),
  ].join('\n');
}

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (character) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character]!);

/** A horizontal bar chart as inline SVG (no script, no external resource). */
export function barChartSvg(chart: BarChart): string {
  const rowHeight = 22;
  // Room for the longest label (≈ 7 px a character at this size), so a dotted purpose key is not cut.
  const labelWidth = Math.min(400, Math.max(120, 12 + 7 * Math.max(0, ...chart.bars.map((bar) => bar.label.length))));
  const width = labelWidth + 420;
  const max = Math.max(1, ...chart.bars.map((bar) => bar.value));
  const height = chart.bars.length * rowHeight + 10;
  const bars = chart.bars
    .map((bar, index) => {
      const y = index * rowHeight + 4;
      const length = Math.round(((width - labelWidth - 60) * bar.value) / max);
      return `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end">${escapeHtml(bar.label)}</text><rect x="${labelWidth}" y="${y}" width="${Math.max(length, bar.value > 0 ? 1 : 0)}" height="16" rx="2"></rect><text x="${labelWidth + length + 6}" y="${y + 14}">${bar.value}</text>`;
    })
    .join('');
  return `<svg role="img" aria-label="${escapeHtml(chart.title)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg"><title>${escapeHtml(chart.title)}</title>${bars}</svg>`;
}

function renderHtml(document: ReportDocument): string {
  const table = (t: ReportTable) =>
    t.rows.length === 0
      ? `<p class="empty">${escapeHtml(t.title)}: none.</p>`
      : `<table><caption>${escapeHtml(t.title)}</caption><thead><tr>${t.columns.map((column) => `<th scope="col">${escapeHtml(column)}</th>`).join('')}</tr></thead><tbody>${t.rows
          .map((row) => `<tr>${row.map((cell) => `<td${typeof cell === 'number' ? ' class="number"' : ''}>${escapeHtml(text(cell))}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`;
  const sections = document.sections
    .map(
      (section) =>
        `<section><h2>${escapeHtml(section.title)}</h2>${section.text ? `<p>${escapeHtml(section.text)}</p>` : ''}${section.chart && section.chart.bars.length ? `<figure>${barChartSvg(section.chart)}<figcaption>${escapeHtml(section.chart.title)}</figcaption></figure>` : ''}${section.tables.map(table).join('')}</section>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(document.title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;margin:2rem auto;max-width:1100px;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.meta{color:#57606a;font-size:.9rem}.summary{background:#f6f8fa;border-left:4px solid #1f6feb;padding:.6rem 1rem}
table{border-collapse:collapse;width:100%;margin:.8rem 0;font-size:.88rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}td.number{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:12px;fill:#1b1f24}svg rect{fill:#1f6feb}figure{margin:1rem 0}figcaption{color:#57606a;font-size:.85rem}.empty{color:#57606a}
</style></head><body>
<header><h1>${escapeHtml(document.title)}</h1><p class="meta">${escapeHtml(parameterLine(document))}</p><p class="meta">${escapeHtml(provenance(document))}</p></header>
<div class="summary"><ul>${document.summary.map((line) => `<li>${escapeHtml(line)}</li>`).join('')}</ul></div>
${sections}
</body></html>
`;
}

/** The characters of Windows-1252 above Latin-1's printable range: what pdfkit's built-in fonts can show there. */
const WIN_ANSI_EXTRAS = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
/** Letters Unicode does not decompose into a Windows-1252 base letter, spelled without their stroke or dot. */
const SPELLED_WITHOUT_MARK: Record<string, string> = { Ł: 'L', ł: 'l', Đ: 'D', đ: 'd', Ħ: 'H', ħ: 'h', ı: 'i' };

const showable = (character: string) => {
  const code = character.codePointAt(0)!;
  return character === '\n' || (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRAS.has(character);
};

/**
 * Text as pdfkit's built-in fonts can show it (Windows-1252): outside it, pdfkit writes a glyph code of the
 * wrong length and garbles the rest of the line. Accented letters lose what 1252 lacks (ę → e, Ł → L), other
 * scripts and symbols become "?", control and invisible format characters go (a tab becomes a space). The
 * HTML, Markdown, CSV and JSON keep every character.
 */
export function pdfText(value: string): string {
  let shown = '';
  // Composed first: a letter and its combining accent (a name from macOS or an identity provider) are one.
  for (const character of value.normalize('NFC').replace(/\r\n?|\t/g, (match) => (match === '\t' ? ' ' : '\n'))) {
    if (showable(character)) shown += character;
    else if (SPELLED_WITHOUT_MARK[character]) shown += SPELLED_WITHOUT_MARK[character];
    // Controls, marks left without a letter, and invisible format characters (zero-width space, BOM, variation selectors) go.
    else if (/[\p{Cc}\p{M}\p{Cf}]/u.test(character)) continue;
    else {
      const base = character.normalize('NFKD').replace(/\p{M}/gu, '');
      shown += base.length > 0 && [...base].every(showable) ? base : '?';
    }
  }
  return shown;
}

/** The largest of `values` (0 for none): a spread into Math.max overflows the stack past ~100,000 values. */
function largest(values: Iterable<number>): number {
  let most = 0;
  for (const value of values) if (value > most) most = value;
  return most;
}

/** The same content as a PDF (pdfkit): title, provenance, summary and every table as a ruled table. */
function renderPdf(document: ReportDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const pdf = new PDFDocument({ size: 'A4', margin: 40, info: { Title: document.title, Producer: 'Candor' } });
    const chunks: Buffer[] = [];
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
    pdf.fontSize(16).text(pdfText(document.title)).moveDown(0.3);
    pdf.fontSize(8).fillColor('#555555').text(pdfText(parameterLine(document))).text(pdfText(provenance(document))).moveDown(0.5).fillColor('#000000');
    pdf.fontSize(10);
    for (const line of document.summary) pdf.text(pdfText(`• ${line}`));
    for (const section of document.sections) {
      pdf.moveDown(0.8).fontSize(12).text(pdfText(section.title)).fontSize(8);
      if (section.text) pdf.text(pdfText(section.text));
      for (const table of section.tables) {
        pdf.moveDown(0.3).font('Helvetica-Bold').text(pdfText(table.title)).font('Helvetica');
        if (table.rows.length === 0 || table.columns.length === 0) pdf.text('none');
        else pdfTable(pdf, table);
      }
    }
    pdf.end();
  });
}

const CELL_PADDING = 3;
const TABLE_FONT_SIZE = 8;

/**
 * Draws `table` ruled, at the cursor: each column gets the width of its longest word (so words break only
 * when the page cannot hold the columns' longest words side by side), and what remains of the page's width
 * goes to the columns whose text is longer than that, by how much; cells wrap, numbers align right, and a
 * row that would cross the page's foot starts a new page under the header row again.
 */
function pdfTable(pdf: PDFKit.PDFDocument, table: ReportTable): void {
  const left = pdf.page.margins.left;
  const width = pdf.page.width - left - pdf.page.margins.right;
  const cells = table.rows.map((row) => row.map((value) => pdfText(text(value))));
  const columns = table.columns.map(pdfText);
  const columnTexts = columns.map((column, index) => [column, ...cells.map((row) => row[index])]);
  pdf.font('Helvetica-Bold').fontSize(TABLE_FONT_SIZE); // header words are bold, and the widest
  const longestWords = () => columnTexts.map((texts) => Math.min(width / 3, largest(texts.flatMap((value) => value.split(/\s+/)).map((word) => pdf.widthOfString(word)))) + 2 * CELL_PADDING);
  let longestWord = longestWords();
  // Smaller type (down to 6 pt) before breaking words: taxonomy keys are long and have no spaces.
  const wordsWidth = longestWord.reduce((sum, value) => sum + value, 0);
  if (wordsWidth > width) {
    pdf.fontSize(Math.max(6, (TABLE_FONT_SIZE * width) / wordsWidth));
    longestWord = longestWords();
  }
  const longestText = columnTexts.map((texts, index) => Math.max(longestWord[index], Math.min(width / 2, largest(texts.map((value) => pdf.widthOfString(value))) + 2 * CELL_PADDING)));
  const least = longestWord.reduce((sum, value) => sum + value, 0);
  const slack = longestText.reduce((sum, value, index) => sum + value - longestWord[index], 0);
  const widths =
    least >= width
      ? longestWord.map((value) => (value * width) / least)
      : longestWord.map((value, index) => value + (slack === 0 ? (width - least) / longestWord.length : ((longestText[index] - value) * Math.min(width - least, slack)) / slack));
  const bottom = pdf.page.height - pdf.page.margins.bottom;
  const fontOf = (header: boolean) => (header ? 'Helvetica-Bold' : 'Helvetica');
  const heightOf = (values: readonly string[], header: boolean) => {
    pdf.font(fontOf(header));
    return largest(values.map((value, index) => pdf.heightOfString(value, { width: widths[index] - 2 * CELL_PADDING }))) + 2 * CELL_PADDING;
  };
  const headerHeight = heightOf(columns, true);
  // A row never taller than a page under the header: a longer cell is cut, with an ellipsis (the HTML and JSON have it whole).
  const tallest = bottom - pdf.page.margins.top - headerHeight;
  const draw = (values: readonly string[], numeric: readonly boolean[], header: boolean) => {
    const height = Math.min(tallest, heightOf(values, header));
    if (pdf.y + height > bottom) {
      pdf.addPage();
      if (!header) drawHeader();
    }
    pdf.font(fontOf(header));
    const top = pdf.y;
    let x = left;
    values.forEach((value, index) => {
      if (header) pdf.rect(x, top, widths[index], height).fillAndStroke('#f2f4f7', '#c8ced6').fillColor('#000000');
      else pdf.rect(x, top, widths[index], height).stroke('#c8ced6');
      pdf.text(value, x + CELL_PADDING, top + CELL_PADDING, { width: widths[index] - 2 * CELL_PADDING, height: height - 2 * CELL_PADDING, ellipsis: true, align: numeric[index] ? 'right' : 'left' });
      x += widths[index];
    });
    pdf.x = left;
    pdf.y = top + height;
  };
  const drawHeader = () => draw(columns, columns.map(() => false), true);
  // The header is not left alone at a page's foot: it starts a page with the first row under it.
  if (pdf.y + headerHeight + Math.min(tallest, heightOf(cells[0], false)) > bottom) pdf.addPage();
  drawHeader();
  table.rows.forEach((row, index) => draw(cells[index], row.map((cell) => typeof cell === 'number'), false));
  pdf.font('Helvetica').fontSize(TABLE_FONT_SIZE);
}
