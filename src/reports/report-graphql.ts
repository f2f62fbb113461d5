import type { ReportDocument } from './report-document';

/** The report in the shape of the GraphQL `Report` type (cells as text, figures as JSON). */
export function reportForGraphQL(document: ReportDocument) {
  return {
    kind: document.kind,
    title: document.title,
    subjectId: document.parameters.subjectId ?? null,
    from: document.parameters.from ?? null,
    to: document.parameters.to ?? null,
    generatedAt: document.generatedAt,
    logHead: document.logHead,
    summary: document.summary,
    sections: document.sections.map((section) => ({
      title: section.title,
      text: section.text ?? null,
      chart: section.chart ?? null,
      tables: section.tables.map((table) => ({ title: table.title, columns: table.columns, rows: table.rows.map((row) => row.map((cell) => (cell === null ? '' : String(cell)))) })),
    })),
    json: JSON.stringify(document.data),
  };
}
