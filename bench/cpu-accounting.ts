/**
 * Where the CPU time of a bench point went, read from Linux's /proc: this process's main thread, its other
 * threads (the log's sealing workers, V8's garbage-collector helpers, libuv's pool), every PostgreSQL process
 * (backends, WAL writer, checkpointer: the benches are loopback-only, so they are this machine's), and how
 * busy the machine's cores were. Throughput on a machine whose cores are all busy is set by the CPU each
 * request costs in all of these together, which is what the split shows. Off Linux every part is unknown.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ, the unit of /proc's CPU times: 100 on every Linux ABI Node.js runs on. */
const TICKS_PER_SECOND = 100;

/** CPU seconds spent during a point, by where; `postgres` is null when its processes cannot be read. */
export interface CpuSplit {
  readonly mainThread: number;
  readonly otherThreads: number;
  readonly postgres: number | null;
  /** The share of all cores' time that was busy (anything on the machine), 0–1. */
  readonly machineBusy: number;
}

interface Snapshot {
  readonly mainThread: number;
  readonly allThreads: number;
  readonly postgres: ReadonlyMap<number, number>;
  readonly machine: { readonly busy: number; readonly total: number };
}

/** user + system ticks from a /proc stat line (fields 14 and 15; the name in parentheses may hold spaces). */
function statTicks(path: string): number {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Ticks of a file that may vanish (a thread or process that ended): 0 then. */
function ticksOr0(path: string): number {
  try {
    return statTicks(path);
  } catch {
    return 0;
  }
}

function postgresTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') ticks.set(Number(entry), statTicks(`/proc/${entry}/stat`));
    } catch {
      // ended meanwhile, or not ours to read
    }
  }
  return ticks;
}

function machineTicks(): { busy: number; total: number } {
  const [, ...counters] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const total = counters.slice(0, 8).reduce((sum, value) => sum + value, 0);
  // idle and iowait are the time no task ran.
  return { busy: total - counters[3] - counters[4], total };
}

function snapshot(): Snapshot {
  const tasks = readdirSync('/proc/self/task');
  return {
    mainThread: statTicks(`/proc/self/task/${process.pid}/stat`),
    allThreads: tasks.reduce((sum, task) => sum + ticksOr0(`/proc/self/task/${task}/stat`), 0),
    postgres: postgresTicks(),
    machine: machineTicks(),
  };
}

/**
 * Starts measuring; the function returned gives the CPU split since then, or undefined where /proc is
 * missing. PostgreSQL processes that started during the point count whole; ones that ended count nothing.
 */
export function cpuMeter(): () => CpuSplit | undefined {
  let start: Snapshot;
  try {
    start = snapshot();
  } catch {
    return () => undefined;
  }
  return () => {
    const end = snapshot();
    let postgres = 0;
    for (const [pid, ticks] of end.postgres) postgres += ticks - (start.postgres.get(pid) ?? 0);
    const seconds = (ticks: number) => ticks / TICKS_PER_SECOND;
    return {
      mainThread: seconds(end.mainThread - start.mainThread),
      otherThreads: seconds(end.allThreads - end.mainThread - (start.allThreads - start.mainThread)),
      postgres: end.postgres.size > 0 || start.postgres.size > 0 ? seconds(postgres) : null,
      machineBusy: (end.machine.busy - start.machine.busy) / Math.max(1, end.machine.total - start.machine.total),
    };
  };
}
