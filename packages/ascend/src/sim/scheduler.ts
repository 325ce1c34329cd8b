import { AIC_PIPES, AIV_PIPES, type AicPipe, type AivPipe, type PipeKind } from '../device/pipes.js';

/** One executed instruction, kept only when a trace is requested. */
export interface TraceEvent {
  readonly core: number;
  /** 'aic', 'aiv0', 'aiv1'. */
  readonly engine: string;
  readonly pipe: string;
  readonly label: string;
  readonly start: number;
  readonly duration: number;
}

/** Collects trace events for the first `cores` core groups, up to `maxEvents`. */
export class TraceSink {
  readonly events: TraceEvent[] = [];
  readonly cores: number;
  readonly maxEvents: number;
  dropped = 0;

  constructor(cores = 2, maxEvents = 200_000) {
    this.cores = cores;
    this.maxEvents = maxEvents;
  }

  record(event: TraceEvent): void {
    if (this.events.length < this.maxEvents) this.events.push(event);
    else this.dropped++;
  }
}

/**
 * One in-order instruction queue. An instruction starts when the pipe is free and its inputs are
 * ready (`ready`, the latest of its flags and data dependencies), and holds the pipe for its
 * duration. The gap between the previous instruction's end and a start is a stall: the queue's
 * next instruction waits on a flag. Cost per instruction is O(1), so 32K-token sequences schedule
 * in seconds: the model works per tile event, never per element.
 */
export class Pipe {
  readonly kind: PipeKind;
  readonly core: number;
  readonly engine: string;
  freeAt = 0;
  busy = 0;
  stall = 0;
  instructions = 0;
  readonly #trace: TraceSink | undefined;

  constructor(kind: PipeKind, core: number, engine: string, trace?: TraceSink) {
    this.kind = kind;
    this.core = core;
    this.engine = engine;
    this.#trace = trace && core < trace.cores ? trace : undefined;
  }

  /** Schedules an instruction; returns its end cycle. */
  run(ready: number, duration: number, label: string): number {
    const start = Math.max(ready, this.freeAt);
    this.stall += start - this.freeAt;
    this.busy += duration;
    this.instructions++;
    this.freeAt = start + duration;
    if (this.#trace) {
      this.#trace.record({
        core: this.core,
        engine: this.engine,
        pipe: this.kind.slice(4),
        label,
        start,
        duration,
      });
    }
    return this.freeAt;
  }

  /** Holds the pipe idle until `cycle` (a kernel barrier), counted as neither busy nor stall. */
  advanceTo(cycle: number): void {
    if (cycle > this.freeAt) this.freeAt = cycle;
  }
}

export type AicPipes = { readonly [P in AicPipe]: Pipe };
export type AivPipes = { readonly [P in AivPipe]: Pipe };

/** One AIC and its two AIVs: the unit that owns a first-level block. */
export class CoreGroup {
  readonly index: number;
  readonly aic: AicPipes;
  readonly aiv: readonly [AivPipes, AivPipes];

  constructor(index: number, trace?: TraceSink) {
    this.index = index;
    this.aic = Object.fromEntries(
      AIC_PIPES.map((p) => [p, new Pipe(`aic.${p}`, index, 'aic', trace)]),
    ) as AicPipes;
    const aiv = (n: number): AivPipes =>
      Object.fromEntries(
        AIV_PIPES.map((p) => [p, new Pipe(`aiv.${p}`, index, `aiv${n}`, trace)]),
      ) as AivPipes;
    this.aiv = [aiv(0), aiv(1)];
  }

  get pipes(): Pipe[] {
    return [...Object.values(this.aic), ...Object.values(this.aiv[0]), ...Object.values(this.aiv[1])];
  }

  /** The cycle at which every pipe of this group has drained. */
  get finish(): number {
    return Math.max(...this.pipes.map((p) => p.freeAt));
  }
}

/** All core groups of the chip. */
export class Machine {
  readonly cores: CoreGroup[];
  readonly trace: TraceSink | undefined;

  constructor(cores: number, trace?: TraceSink) {
    this.trace = trace;
    this.cores = Array.from({ length: cores }, (_, i) => new CoreGroup(i, trace));
  }

  get finish(): number {
    let end = 0;
    for (const c of this.cores) end = Math.max(end, c.finish);
    return end;
  }

  /** A kernel boundary: nothing of the next kernel starts before `cycle` on any pipe. */
  barrier(cycle: number): void {
    for (const c of this.cores) for (const p of c.pipes) p.advanceTo(cycle);
  }
}
