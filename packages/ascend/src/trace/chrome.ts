import type { SimulationReport } from '../sim/report.js';

/** One event of the Chrome trace event format (what chrome://tracing and Perfetto load). */
export interface ChromeTraceEvent {
  readonly name: string;
  readonly ph: 'X' | 'M';
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly cat?: string;
  readonly args?: Readonly<Record<string, string | number>>;
}

export interface ChromeTrace {
  readonly traceEvents: ChromeTraceEvent[];
  readonly displayTimeUnit: 'ns';
  readonly otherData: Readonly<Record<string, string | number | boolean>>;
}

const ENGINE_ORDER = ['aic', 'aiv0', 'aiv1'];
const PIPE_ORDER = ['Scalar', 'MTE2', 'MTE1', 'Cube', 'FixPipe', 'Vector', 'MTE3'];

/**
 * The report's trace as Chrome trace JSON: one process per core group, one thread per pipe
 * (`aic MTE2`, `aiv0 Vector`, ...), complete events in microseconds of simulated time, so Perfetto
 * shows how the pipes of each engine overlap. Throws if the report was made without a trace.
 */
export function toChromeTrace(report: SimulationReport): ChromeTrace {
  if (!report.trace) throw new Error('the report has no trace: simulate with { trace: true }');
  const usPerCycle = 1e6 / report.clockHz;
  const events: ChromeTraceEvent[] = [];
  const threads = new Map<string, number>();
  const tidOf = (core: number, engine: string, pipe: string): number => {
    const key = `${core}/${engine}/${pipe}`;
    let tid = threads.get(key);
    if (tid === undefined) {
      tid = ENGINE_ORDER.indexOf(engine) * 10 + PIPE_ORDER.indexOf(pipe) + 1;
      threads.set(key, tid);
      events.push({ name: 'thread_name', ph: 'M', pid: core, tid, args: { name: `${engine} ${pipe}` } });
      events.push({ name: 'thread_sort_index', ph: 'M', pid: core, tid, args: { sort_index: tid } });
    }
    return tid;
  };
  const cores = new Set<number>();
  for (const e of report.trace.events) {
    if (!cores.has(e.core)) {
      cores.add(e.core);
      events.push({
        name: 'process_name',
        ph: 'M',
        pid: e.core,
        tid: 0,
        args: { name: `core group ${e.core}` },
      });
    }
    events.push({
      name: e.label,
      cat: `${e.engine}.${e.pipe}`,
      ph: 'X',
      pid: e.core,
      tid: tidOf(e.core, e.engine, e.pipe),
      ts: e.start * usPerCycle,
      dur: e.duration * usPerCycle,
      args: { startCycle: e.start, cycles: e.duration },
    });
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ns',
    otherData: {
      simulated: true,
      device: report.device,
      kernel: report.kernel,
      totalCycles: report.totalCycles,
      droppedEvents: report.trace.dropped,
    },
  };
}
