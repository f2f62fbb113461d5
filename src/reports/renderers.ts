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

/** The same content as a PDF (pdfkit): title, provenance, summary and every table as aligned text. */
function renderPdf(document: ReportDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const pdf = new PDFDocument({ size: 'A4', margin: 40, info: { Title: document.title, Producer: 'Candor' } });
    const chunks: Buffer[] = [];
    pdf.on('data', (chunk: Buffer) => chunks.push(chunk));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
    pdf.fontSize(16).text(document.title).moveDown(0.3);
    pdf.fontSize(8).fillColor('#555555').text(parameterLine(document)).text(provenance(document)).moveDown(0.5).fillColor('#000000');
    pdf.fontSize(10);
    for (const line of document.summary) pdf.text(`• ${line}`);
    for (const section of document.sections) {
      pdf.moveDown(0.8).fontSize(12).text(section.title).fontSize(8);
      if (section.text) pdf.text(section.text);
      for (const table of section.tables) {
        pdf.moveDown(0.3).font('Helvetica-Bold').text(table.title).font('Helvetica');
        if (table.rows.length === 0) pdf.text('none');
        else for (const row of [table.columns, ...table.rows.map((cells) => cells.map(text))]) pdf.text(row.join('  ·  '));
      }
    }
    pdf.end();
  });
}
