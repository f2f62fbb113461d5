/**
 * A report as data: what every renderer (JSON, CSV, Markdown, HTML, PDF) draws from. Builders produce it;
 * renderers never compute figures.
 */
export type Cell = string | number | null;

export interface ReportTable {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly Cell[]>;
}

export interface BarChart {
  readonly title: string;
  readonly bars: ReadonlyArray<{ readonly label: string; readonly value: number }>;
}

export interface ReportSection {
  readonly title: string;
  readonly text?: string;
  readonly chart?: BarChart;
  readonly tables: readonly ReportTable[];
}

export const REPORT_KINDS = ['ropa', 'subject-access', 'purpose-usage', 'denials', 'consent-coverage'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export interface ReportParameters {
  readonly subjectId?: string;
  /** Inclusive ISO time. */
  readonly from?: string;
  /** Exclusive ISO time. */
  readonly to?: string;
}

export interface ReportDocument {
  readonly kind: ReportKind;
  readonly title: string;
  readonly parameters: ReportParameters;
  readonly generatedAt: string;
  /** The access-log head the figures were computed from. */
  readonly logHead: { readonly seq: number; readonly hash: string };
  /** One-line findings a reader should see first (e.g. "no access outside the declared purposes"). */
  readonly summary: readonly string[];
  readonly sections: readonly ReportSection[];
  /** The table the CSV format carries (the JSON format carries everything). */
  readonly primaryTable: string;
  /** The machine-readable figures (the JSON format). */
  readonly data: unknown;
}
