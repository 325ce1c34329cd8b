/**
 * The pipes of one Ascend 910B core group (one AIC and its two AIVs) and what each costs.
 *
 * Every instruction queue on an Ascend core ("pipe") executes in order; pipes run concurrently and
 * meet only at set_flag/wait_flag (inside a core) or cross-core flags (AIC <-> AIV). That is the
 * whole reason an event scheduler per pipe is a faithful model of what the tiling changes.
 */

/** Pipes of the Cube core (AIC). */
export type AicPipe = 'MTE2' | 'MTE1' | 'Cube' | 'FixPipe' | 'Scalar';
/** Pipes of each Vector core (AIV). */
export type AivPipe = 'MTE2' | 'Vector' | 'MTE3' | 'Scalar';

/** A pipe kind as reported: the engine it sits on and its name, e.g. `aic.Cube`, `aiv.MTE3`. */
export type PipeKind = `aic.${AicPipe}` | `aiv.${AivPipe}`;

export const AIC_PIPES: readonly AicPipe[] = ['MTE2', 'MTE1', 'Cube', 'FixPipe', 'Scalar'];
export const AIV_PIPES: readonly AivPipe[] = ['MTE2', 'Vector', 'MTE3', 'Scalar'];
export const PIPE_KINDS: readonly PipeKind[] = [
  ...AIC_PIPES.map((p) => `aic.${p}` as const),
  ...AIV_PIPES.map((p) => `aiv.${p}` as const),
];

/** Whether a figure is documented for the 910B or chosen by us; README's table prints this. */
export type Provenance = 'documented' | 'derived' | 'assumption';

export interface Parameter<T = number> {
  readonly value: T;
  readonly unit: string;
  readonly provenance: Provenance;
  readonly note: string;
}

/**
 * Per-core pipe parameters, in cycles of the AI Core clock. A transfer occupies its pipe for
 * `issue + bytes / bytesPerCycle` cycles and its data is usable `latency` cycles after that.
 */
export interface PipeTable {
  /** Cube fractals (16x16x16 f16/bf16 MACs into f32) per cycle. */
  readonly cubeFractalsPerCycle: Parameter;
  /** Fixed cycles before a Cube instruction streams (L0 read-out, accumulator set-up). */
  readonly cubeIssue: Parameter;
  /** MTE1: L1 -> L0A/L0B. */
  readonly mte1BytesPerCycle: Parameter;
  /** MTE2: GM -> L1 (AIC) or GM -> UB (AIV), before the shared-bandwidth cap. */
  readonly mte2BytesPerCycle: Parameter;
  /** MTE3: UB -> GM. */
  readonly mte3BytesPerCycle: Parameter;
  /** FixPipe: L0C -> GM, with the f32 -> output conversion on the way. */
  readonly fixpipeBytesPerCycle: Parameter;
  /** Fixed cycles to start one DMA (descriptor, address translation). */
  readonly dmaIssue: Parameter;
  /** Cycles from a GM read being issued to its first bytes landing (L2 hit). */
  readonly gmLatency: Parameter;
  /** Vector lanes: f32 elements per cycle of one simple vector instruction. */
  readonly vectorF32PerCycle: Parameter;
  /** Passes over the data an `exp` costs compared with an add (transcendental). */
  readonly vectorExpPasses: Parameter;
  /** Fixed cycles per vector instruction (repeat set-up). */
  readonly vectorIssue: Parameter;
  /** Scalar cycles per first-level tile: loop control, address arithmetic, flag handling. */
  readonly scalarPerTile: Parameter;
}

export const DEFAULT_PIPES: PipeTable = {
  cubeFractalsPerCycle: {
    value: 1,
    unit: 'fractal/cycle',
    provenance: 'documented',
    note: 'Cube 16x16x16 f16 per cycle (4096 MAC/cycle), the Da Vinci Cube',
  },
  cubeIssue: { value: 16, unit: 'cycles', provenance: 'assumption', note: 'per mmad instruction' },
  mte1BytesPerCycle: {
    value: 256,
    unit: 'B/cycle',
    provenance: 'assumption',
    note: 'L1 -> L0A/L0B load (incl. fractal layout); enough to feed the Cube at d >= 64',
  },
  mte2BytesPerCycle: {
    value: 128,
    unit: 'B/cycle',
    provenance: 'assumption',
    note: 'port limit of one core; capped further by the core share of L2/HBM bandwidth',
  },
  mte3BytesPerCycle: { value: 128, unit: 'B/cycle', provenance: 'assumption', note: 'UB -> GM port limit' },
  fixpipeBytesPerCycle: {
    value: 128,
    unit: 'B/cycle',
    provenance: 'assumption',
    note: 'L0C -> GM port limit',
  },
  dmaIssue: { value: 32, unit: 'cycles', provenance: 'assumption', note: 'per DMA instruction' },
  gmLatency: {
    value: 300,
    unit: 'cycles',
    provenance: 'assumption',
    note: 'GM read latency on an L2 hit (~170 ns at 1.8 GHz)',
  },
  vectorF32PerCycle: {
    value: 64,
    unit: 'f32/cycle',
    provenance: 'documented',
    note: '256-byte vector datapath per AIV (64 f32 or 128 f16 lanes)',
  },
  vectorExpPasses: {
    value: 2,
    unit: 'passes',
    provenance: 'assumption',
    note: 'exp costs two simple-instruction passes',
  },
  vectorIssue: { value: 8, unit: 'cycles', provenance: 'assumption', note: 'per vector instruction' },
  scalarPerTile: {
    value: 64,
    unit: 'cycles',
    provenance: 'assumption',
    note: 'loop control, address arithmetic and flag handling per first-level tile and engine',
  },
};

/** Plain numbers of a pipe table, as the scheduler reads them. */
export type PipeNumbers = { readonly [K in keyof PipeTable]: number };

export function pipeNumbers(table: PipeTable): PipeNumbers {
  const out: Record<string, number> = {};
  for (const [key, parameter] of Object.entries(table)) out[key] = (parameter as Parameter).value;
  return out as PipeNumbers;
}
