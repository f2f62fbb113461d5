import { SafeIntResolver } from 'graphql-scalars';
import { Field, Float, ID } from 'type-graphql';
import type { ReportKind } from '../reports/report-document';
import { ReportKindEnum } from './enums';
import { Governed, GovernedType } from './governed.decorator';
import { WRITTEN_TIME } from './time-format';

// Reports are compiled for auditors; the operation is restricted to them and each run is recorded.
const REPORT = { category: 'system.operations' } as const;

@GovernedType('ReportBar')
export class ReportBarType {
  @Field(() => String) @Governed(REPORT) label!: string;
  @Field(() => Float) @Governed(REPORT) value!: number;
}

@GovernedType('ReportChart')
export class ReportChartType {
  @Field(() => String) @Governed(REPORT) title!: string;
  @Field(() => [ReportBarType]) @Governed(REPORT) bars!: ReportBarType[];
}

@GovernedType('ReportTable')
export class ReportTableType {
  @Field(() => String) @Governed(REPORT) title!: string;
  @Field(() => [String]) @Governed(REPORT) columns!: string[];
  @Field(() => [[String]], { description: 'Cells as text; an empty string stands for no value.' }) @Governed(REPORT) rows!: string[][];
}

@GovernedType('ReportSection')
export class ReportSectionType {
  @Field(() => String) @Governed(REPORT) title!: string;
  @Field(() => String, { nullable: true }) @Governed(REPORT) text!: string | null;
  @Field(() => ReportChartType, { nullable: true }) @Governed(REPORT) chart!: ReportChartType | null;
  @Field(() => [ReportTableType]) @Governed(REPORT) tables!: ReportTableType[];
}

@GovernedType('ReportLogHead', { description: "The access log's head when the run started: the log-based kinds read it up to there (CONSENT_COVERAGE reads no log)." })
export class ReportLogHeadType {
  @Field(() => SafeIntResolver) @Governed(REPORT) seq!: number;
  @Field(() => String) @Governed(REPORT) hash!: string;
}

@GovernedType('Report', { description: 'A compliance report: the same content as `npx candor report`.' })
export class ReportType {
  @Field(() => ReportKindEnum) @Governed(REPORT) kind!: ReportKind;
  @Field(() => String) @Governed(REPORT) title!: string;
  @Field(() => ID, { nullable: true }) @Governed(REPORT) subjectId!: string | null;
  @Field(() => String, { nullable: true, description: `The \`from\` asked for (${WRITTEN_TIME}); null when none was.` }) @Governed(REPORT) from!: string | null;
  @Field(() => String, { nullable: true, description: `The \`to\` asked for (${WRITTEN_TIME}); null when none was.` }) @Governed(REPORT) to!: string | null;
  @Field(() => String, { description: `When the report was generated (${WRITTEN_TIME}).` }) @Governed(REPORT) generatedAt!: string;
  @Field(() => ReportLogHeadType) @Governed(REPORT) logHead!: ReportLogHeadType;
  @Field(() => [String]) @Governed(REPORT) summary!: string[];
  @Field(() => [ReportSectionType]) @Governed(REPORT) sections!: ReportSectionType[];
  @Field(() => String, { description: 'The machine-readable figures, as JSON (the --format json output).' }) @Governed(REPORT) json!: string;
}
