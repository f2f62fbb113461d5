import { CHOICE_FILTER_REASONS, SELF_ACCESS } from '../policy/codes';
import type { LogRecord } from './access-log-source';
import type { Cell, ReportDocument, ReportParameters } from './report-document';

/** What every report builder is given besides the records. */
export interface ReportFrame {
  readonly parameters: ReportParameters;
  readonly generatedAt: string;
  readonly logHead: { readonly seq: number; readonly hash: string };
  /** The time of the oldest record the log holds (null for an empty log): per-day figures start no earlier. */
  readonly logSince: string | null;
}

/** Field decisions carry a category; operation records (refusals, log reads) do not. */
export const isFieldDecision = (record: LogRecord) => record.category !== null;
/**
 * A dry run's decisions (recorded WITHHELD, EXPLAIN_ONLY) released nothing and withheld nothing from a
 * use, a subject reading their own record is their right of access, not a team's use of a purpose, and
 * `onlyPermitted`'s records of the choices it filtered a list on are no field a purpose declares (the ROPA
 * leaves them out too): usage figures leave all three out (the subject-access report still lists them).
 */
const isUse = (record: LogRecord) => isFieldDecision(record) && !isDryRun(record) && record.reason !== SELF_ACCESS && !CHOICE_FILTER_REASONS.has(record.reason);
/** A field decision of a dry run (`x-governance-explain`): recorded WITHHELD, EXPLAIN_ONLY. */
export const isDryRun = (record: { readonly reason: string }) => record.reason === 'EXPLAIN_ONLY';
const day = (at: string) => at.slice(0, 10);
const increment = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by);
const sorted = <T>(rows: T[], key: (row: T) => string) => rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

/** Purpose usage: accesses per purpose × category × team, distinct subjects, outcomes, reasons, daily trend. */
export function purposeUsageReport() {
  const groups = new Map<string, { purpose: string; category: string; team: string; released: number; withheld: number; masked: number; subjects: Set<string> }>();
  const reasons = new Map<string, number>();
  const days = new Map<string, { released: number; withheld: number; masked: number }>();
  return {
    add(record: LogRecord): void {
      if (!isUse(record)) return;
      const key = `${record.purpose}\u0000${record.category}\u0000${record.actorTeam}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { purpose: record.purpose ?? '', category: record.category ?? '', team: record.actorTeam ?? '', released: 0, withheld: 0, masked: 0, subjects: new Set() }));
      // By pseudonym: an erased subject's records no longer name them, but are still one subject's.
      if (record.subjectPseudonym) group.subjects.add(record.subjectPseudonym);
      const trend = days.get(day(record.at)) ?? { released: 0, withheld: 0, masked: 0 };
      days.set(day(record.at), trend);
      if (record.decision === 'WITHHELD') {
        group.withheld++;
        trend.withheld++;
        increment(reasons, record.reason);
      } else if (record.decision === 'MASKED') {
        group.masked++;
        trend.masked++;
      } else {
        group.released++;
        trend.released++;
      }
    },
    finish(frame: ReportFrame): ReportDocument {
      const rows = sorted([...groups.values()], (group) => `${group.purpose}|${group.category}|${group.team}`).map((group) => ({
        purpose: group.purpose,
        category: group.category,
        team: group.team,
        accesses: group.released + group.withheld + group.masked,
        released: group.released,
        withheld: group.withheld,
        masked: group.masked,
        distinctSubjects: group.subjects.size,
      }));
      const byPurpose = new Map<string, number>();
      for (const row of rows) increment(byPurpose, row.purpose, row.accesses);
      const trend = daysOf(frame, [...days.keys()].sort()).map((date) => ({ date, ...(days.get(date) ?? { released: 0, withheld: 0, masked: 0 }) }));
      const withheldByReason = sorted([...reasons.entries()].map(([reason, count]) => ({ reason, count })), (row) => row.reason);
      const total = rows.reduce((sum, row) => sum + row.accesses, 0);
      const withheld = rows.reduce((sum, row) => sum + row.withheld, 0);
      return {
        kind: 'purpose-usage',
        title: 'Purpose usage',
        primaryTable: 'Accesses',
        ...frame,
        summary: [`${total} field accesses in the period, ${withheld} withheld (${percent(withheld, total)}).`],
        sections: [
          {
            title: 'Accesses by purpose, category and team',
            chart: { title: 'Field accesses per purpose', bars: [...byPurpose.entries()].map(([label, value]) => ({ label, value })) },
            tables: [{ title: 'Accesses', columns: ['purpose', 'category', 'team', 'accesses', 'released', 'withheld', 'masked', 'distinct subjects'], rows: rows.map((row) => Object.values(row) as Cell[]) }],
          },
          { title: 'Withheld, by reason', tables: [{ title: 'Withheld by reason', columns: ['reason', 'count'], rows: withheldByReason.map((row) => [row.reason, row.count]) }] },
          {
            title: 'Trend per day',
            chart: { title: 'Field accesses per day', bars: trend.map((row) => ({ label: row.date, value: row.released + row.withheld + row.masked })) },
            tables: [{ title: 'Per day', columns: ['date', 'released', 'withheld', 'masked'], rows: trend.map((row) => [row.date, row.released, row.withheld, row.masked]) }],
          },
        ],
        data: { groups: rows, withheldByReason, trend },
      };
    },
  };
}

/** Denials and anomalies: withheld rates per actor, refused operations, unpermitted purpose attempts, spikes. */
export function denialsReport() {
  const actors = new Map<string, { actorId: string; name: string; team: string; decisions: number; withheld: number }>();
  const refusals = new Map<string, number>();
  const attempts = new Map<string, { actorId: string; purpose: string; count: number }>();
  const withheldPerDay = new Map<string, number>();
  return {
    add(record: LogRecord): void {
      if (record.decision === 'REFUSED') {
        increment(refusals, record.reason);
        if (record.reason === 'PURPOSE_NOT_PERMITTED') {
          const key = `${record.actorId}\u0000${record.purpose}`;
          const attempt = attempts.get(key) ?? { actorId: record.actorId ?? '(unknown)', purpose: record.purpose ?? '', count: 0 };
          attempt.count++;
          attempts.set(key, attempt);
        }
        return;
      }
      if (!isUse(record) || !record.actorId) return;
      const actor = actors.get(record.actorId) ?? { actorId: record.actorId, name: record.actorName ?? '', team: record.actorTeam ?? '', decisions: 0, withheld: 0 };
      actors.set(record.actorId, actor);
      actor.decisions++;
      // Every day with a field decision counts, with nothing withheld too: a spike stands out against quiet days.
      increment(withheldPerDay, day(record.at), record.decision === 'WITHHELD' ? 1 : 0);
      if (record.decision === 'WITHHELD') actor.withheld++;
    },
    finish(frame: ReportFrame): ReportDocument {
      const actorRows = [...actors.values()].map((actor) => ({ ...actor, withheldRate: actor.decisions ? +(actor.withheld / actor.decisions).toFixed(4) : 0 })).sort((a, b) => b.withheldRate - a.withheldRate || (a.actorId < b.actorId ? -1 : 1));
      const refusalRows = sorted([...refusals.entries()].map(([code, count]) => ({ code, count })), (row) => row.code);
      const attemptRows = sorted([...attempts.values()], (row) => `${row.actorId}|${row.purpose}`);
      const daily = withEveryDay(sorted([...withheldPerDay.entries()].map(([date, withheld]) => ({ date, withheld })), (row) => row.date), frame);
      const spikes = findSpikes(daily);
      return {
        kind: 'denials',
        title: 'Denials and anomalies',
        primaryTable: 'Actors',
        ...frame,
        summary: [
          attemptRows.length ? `${attemptRows.reduce((sum, row) => sum + row.count, 0)} attempt(s) to use a purpose the actor is not entitled to (potential misuse).` : 'No attempt to use a purpose the actor is not entitled to.',
          spikes.length ? `${spikes.length} day(s) with a spike of withheld fields.` : 'No spike of withheld fields.',
        ],
        sections: [
          {
            title: 'Withheld rate per actor',
            chart: { title: 'Withheld share per actor (%)', bars: actorRows.map((row) => ({ label: row.name || row.actorId, value: +(row.withheldRate * 100).toFixed(1) })) },
            // The table says the rate as the chart does: a percentage.
            tables: [{ title: 'Actors', columns: ['actor', 'name', 'team', 'field decisions', 'withheld', 'withheld (%)'], rows: actorRows.map((row) => [row.actorId, row.name, row.team, row.decisions, row.withheld, +(row.withheldRate * 100).toFixed(1)]) }],
          },
          { title: 'Refused operations by code', tables: [{ title: 'Refusals', columns: ['code', 'count'], rows: refusalRows.map((row) => [row.code, row.count]) }] },
          { title: 'Purposes not permitted (potential misuse)', tables: [{ title: 'Attempts', columns: ['actor', 'purpose', 'attempts'], rows: attemptRows.map((row) => [row.actorId, row.purpose, row.count]) }] },
          {
            title: 'Spikes of withheld fields',
            text: 'A day is a spike when its withheld count exceeds the mean of the other days by three standard deviations (and is at least 10).',
            tables: [{ title: 'Spikes', columns: ['date', 'withheld', 'baseline mean'], rows: spikes.map((row) => [row.date, row.withheld, row.baseline]) }],
          },
        ],
        data: { actors: actorRows, refusals: refusalRows, purposeNotPermitted: attemptRows, withheldPerDay: daily, spikes },
      };
    },
  };
}

/** What bounds a per-day figure besides its data: the period asked for, within the log's life. */
type DaySpan = Pick<ReportFrame, 'parameters' | 'generatedAt' | 'logSince'>;

/**
 * The days (UTC) a per-day figure spans: every day of the period, from the day of `from` through the day
 * of its last instant (`to` is exclusive), quiet days at either end included — but no day before the log's
 * oldest record (a pruned or not yet begun log recorded nothing there, which is no quiet day) nor after the
 * report's own time. Without `from` (or `to`) the first (or last) of `dataDays` (sorted) stands for that bound.
 */
function daysOf(span: DaySpan | undefined, dataDays: readonly string[]): string[] {
  const { from, to } = span?.parameters ?? {};
  const latest = (a: string, b: string | null) => (b !== null && b > a ? b : a);
  const earliest = (a: string, b: string) => (b < a ? b : a);
  const first = from === undefined ? dataDays[0] : span?.logSince ? latest(day(from), day(span.logSince)) : undefined;
  const last = to === undefined ? dataDays[dataDays.length - 1] : earliest(day(new Date(Date.parse(to) - 1).toISOString()), day(span!.generatedAt));
  const days: string[] = [];
  if (first === undefined || last === undefined) return days;
  for (let at = Date.parse(`${first}T00:00:00Z`); day(new Date(at).toISOString()) <= last; at += 86_400_000) days.push(day(new Date(at).toISOString()));
  return days;
}

/** Every day of the span (`daysOf`), those missing from `daily` (no field decision at all) with nothing withheld. */
export function withEveryDay(daily: ReadonlyArray<{ date: string; withheld: number }>, span?: DaySpan): Array<{ date: string; withheld: number }> {
  const byDate = new Map(daily.map((row) => [row.date, row.withheld]));
  return daysOf(span, daily.map((row) => row.date)).map((date) => ({ date, withheld: byDate.get(date) ?? 0 }));
}

/** Days whose count is above mean + 3σ of the other days (and at least 10); one pass over the days' sums. */
export function findSpikes(daily: ReadonlyArray<{ date: string; withheld: number }>): Array<{ date: string; withheld: number; baseline: number }> {
  if (daily.length < 3) return [];
  const others = daily.length - 1;
  const sum = daily.reduce((total, row) => total + row.withheld, 0);
  const squares = daily.reduce((total, row) => total + row.withheld ** 2, 0);
  return daily.flatMap((candidate) => {
    const mean = (sum - candidate.withheld) / others;
    const deviation = Math.sqrt(Math.max(0, (squares - candidate.withheld ** 2) / others - mean ** 2));
    return candidate.withheld >= 10 && candidate.withheld > mean + 3 * deviation ? [{ date: candidate.date, withheld: candidate.withheld, baseline: +mean.toFixed(2) }] : [];
  });
}

export function percent(part: number, whole: number): string {
  return whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1)}%`;
}
