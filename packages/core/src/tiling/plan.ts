import { bytesOf } from '../dtype.js';
import { unsupported } from '../errors.js';
import type { AttentionProblem } from '../shape.js';
import type { HardwareSpec, MemoryLevel, Operand, TileConfig, TileLevel } from './hardware.js';

export interface BufferUse {
  readonly level: string;
  readonly bytes: number;
  readonly capacity: number;
}

/**
 * A two-level tiling. First level: the q-block one parallel unit owns and the k/v-block it streams
 * (and hands over, on Ascend). Second level: the sub-blocks that fit the innermost buffers.
 */
export interface TilePlan {
  readonly blockQ: number;
  readonly blockK: number;
  readonly subQ: number;
  readonly subK: number;
  readonly stages: number;
  /** Partitions of the key range per (batch, head, q-block), merged by LSE. 1 = no split. */
  readonly splitKV: number;
  /** The compiled configuration chosen, when the spec lists them. */
  readonly config?: string;
  readonly qBlocks: number;
  readonly kBlocks: number;
  /** Independent pieces of work: batch x headsQ x qBlocks x splitKV. */
  readonly workItems: number;
  readonly bufferUse: readonly BufferUse[];
  /** Why this plan: one sentence per decision. */
  readonly reasons: readonly string[];
}

export interface PlanOptions {
  /** Force the first-level block sizes (e.g. to compare single- and two-level tiling). */
  readonly blockQ?: number;
  readonly blockK?: number;
  /** Force a split count (1 disables split-KV). */
  readonly splitKV?: number;
  /**
   * Replaces the built-in cost model when ranking feasible candidates (lower is better): a backend
   * with a better model of its device (a simulator, measured tables) plugs it in here.
   */
  readonly score?: (candidate: TileConfig, splitKV: number, problem: AttentionProblem) => number;
}

const POWERS = [16, 32, 64, 128, 256, 512];

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
const roundUp = (a: number, b: number): number => ceilDiv(a, b) * b;

/** Bytes one memory level needs for the blocks of its tile level. */
export function levelBytes(
  level: MemoryLevel,
  rows: number,
  cols: number,
  headDim: number,
  storageBytes: number,
): number {
  const align = level.alignment ?? 1;
  const kvCopies = level.buffers ?? 1;
  const size: Record<Operand, number> = {
    q: rows * headDim * storageBytes,
    k: cols * headDim * storageBytes * kvCopies,
    v: cols * headDim * storageBytes * kvCopies,
    s: rows * cols * 4,
    p: rows * cols * storageBytes,
    o: rows * headDim * 4,
    stats: rows * 2 * 4,
  };
  return level.holds.reduce((sum, op) => sum + roundUp(size[op], align), 0);
}

function bufferUse(
  spec: HardwareSpec,
  c: Pick<TileConfig, 'blockQ' | 'blockK' | 'subQ' | 'subK'>,
  problem: AttentionProblem,
): BufferUse[] {
  const sizes: Record<TileLevel, [number, number]> = {
    first: [c.blockQ, c.blockK],
    second: [c.subQ, c.subK],
  };
  return spec.memory.map((level) => {
    const [rows, cols] = sizes[level.tileLevel];
    return {
      level: level.name,
      bytes: levelBytes(level, rows, cols, problem.headDim, bytesOf(problem.dtype)),
      capacity: level.bytes,
    };
  });
}

function candidates(spec: HardwareSpec, problem: AttentionProblem, options: PlanOptions): TileConfig[] {
  if (spec.configs) {
    return spec.configs.filter(
      (c) =>
        (c.headDims === undefined || c.headDims.includes(problem.headDim)) &&
        (options.blockQ === undefined || c.blockQ === options.blockQ) &&
        (options.blockK === undefined || c.blockK === options.blockK),
    );
  }
  const { m, n } = spec.nativeTile;
  // No point in q-blocks much taller than the query: decode gets the smallest block the unit allows.
  const qCap = Math.max(roundUp(problem.seqQ, m), m);
  const kCap = Math.max(roundUp(problem.seqK, n), n);
  const blockQs = options.blockQ
    ? [options.blockQ]
    : dedupe([m, ...POWERS].map((b) => Math.min(roundUp(b, m), qCap)));
  const blockKs = options.blockK
    ? [options.blockK]
    : dedupe([n, ...POWERS].map((b) => Math.min(roundUp(b, n), kCap)));
  const out: TileConfig[] = [];
  for (const blockQ of blockQs) {
    for (const blockK of blockKs) {
      for (const subQ of divisorsOf(blockQ, m)) {
        for (const subK of divisorsOf(blockK, n)) {
          out.push({ name: `${blockQ}x${blockK}/${subQ}x${subK}`, blockQ, blockK, subQ, subK });
        }
      }
    }
  }
  return out;
}

/** Sub-block sizes: blockSize/2^i that stay multiples of the native tile. */
function divisorsOf(block: number, unit: number): number[] {
  const out = [block];
  for (let s = block / 2; s >= unit && Number.isInteger(s) && s % unit === 0; s /= 2) out.push(s);
  return out;
}

const dedupe = (xs: number[]): number[] => [...new Set(xs)];

/**
 * Relative time of a candidate: padded tile work spread over the units in waves, plus the k/v
 * bytes re-read by every q-block, plus a fixed cost per first-level tile hand-over. Absolute
 * figures come from the spec when it has them; only the ranking matters here.
 */
function score(spec: HardwareSpec, problem: AttentionProblem, c: TileConfig, splitKV: number): number {
  const qBlocks = ceilDiv(problem.seqQ, c.blockQ);
  const kBlocks = ceilDiv(problem.seqK, c.blockK);
  const items = problem.batch * problem.headsQ * qBlocks * splitKV;
  const waves = ceilDiv(items, spec.parallelUnits);
  const tilesPerItem = ceilDiv(kBlocks, splitKV);
  const flopsPerTile = 4 * c.blockQ * c.blockK * problem.headDim;
  const peak = spec.peakFlops ?? 1e12;
  const bandwidth = spec.memoryBandwidth ?? 1e11;
  const perUnit = peak / spec.parallelUnits;
  const compute = (waves * tilesPerItem * flopsPerTile) / perUnit;
  const kvBytes =
    problem.batch *
    problem.headsQ *
    qBlocks *
    2 *
    roundUp(problem.seqK, c.blockK) *
    problem.headDim *
    bytesOf(problem.dtype);
  const memory = kvBytes / bandwidth;
  const overhead = (spec.tileOverhead ?? 0) * waves * tilesPerItem;
  // Smaller sub-blocks cost instruction overhead: a mild preference for the largest that fit.
  const subPenalty = 1 + 0.02 * Math.log2((c.blockQ * c.blockK) / (c.subQ * c.subK));
  return (Math.max(compute, memory) + overhead) * subPenalty;
}

/**
 * Chooses the two-level tiling of `problem` on `spec`: the feasible configuration (every buffer
 * within its capacity) with the lowest modelled time, and a split-KV count when there are fewer
 * work items than parallel units (decode). Throws UNSUPPORTED when nothing fits.
 */
export function planTiles(
  problem: AttentionProblem,
  spec: HardwareSpec,
  options: PlanOptions = {},
): TilePlan {
  // A caller's own score function may depend on anything: only built-in scoring is memoised.
  if (options.score) return planUncached(problem, spec, options);
  let plans = PLAN_CACHE.get(spec);
  if (!plans) {
    plans = new Map();
    PLAN_CACHE.set(spec, plans);
  }
  const { dtype, batch, seqQ, seqK, headsQ, headsKV, headDim } = problem;
  const key = `${dtype} ${batch} ${seqQ} ${seqK} ${headsQ} ${headsKV} ${headDim} ${options.blockQ} ${options.blockK} ${options.splitKV}`;
  let plan = plans.get(key);
  if (plan === undefined) {
    plan = planUncached(problem, spec, options);
    if (plans.size >= PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value!);
    plans.set(key, plan);
  }
  return plan;
}

/**
 * Plans by spec (compared by identity) and shape. Scoring every candidate costs milliseconds on
 * the JS thread, and serving or decoding loops ask for the same few shapes again and again.
 */
const PLAN_CACHE = new WeakMap<HardwareSpec, Map<string, TilePlan>>();
const PLAN_CACHE_SIZE = 256;

function planUncached(problem: AttentionProblem, spec: HardwareSpec, options: PlanOptions): TilePlan {
  const all = candidates(spec, problem, options);
  if (all.length === 0) {
    throw unsupported('headDim', `${spec.name} has no tile configuration for head dim ${problem.headDim}`);
  }
  const feasible = all.filter((c) => bufferUse(spec, c, problem).every((u) => u.bytes <= u.capacity));
  if (feasible.length === 0) {
    const smallest = all.reduce((a, b) => (a.blockQ * a.blockK <= b.blockQ * b.blockK ? a : b));
    const over = bufferUse(spec, smallest, problem).filter((u) => u.bytes > u.capacity);
    throw unsupported(
      'headDim',
      `no tile configuration fits ${spec.name} at head dim ${problem.headDim}: ${over
        .map((u) => `${u.level} needs ${u.bytes} B of ${u.capacity} B`)
        .join(', ')}`,
    );
  }

  let best: { c: TileConfig; split: number; t: number } | undefined;
  for (const c of feasible) {
    const split = options.splitKV ?? chooseSplit(spec, problem, c);
    const t = options.score ? options.score(c, split, problem) : score(spec, problem, c, split);
    const better =
      !best ||
      t < best.t * (1 - 1e-9) ||
      (t <= best.t * (1 + 1e-9) && c.blockQ * c.blockK > best.c.blockQ * best.c.blockK);
    if (better) best = { c, split, t };
  }
  const { c, split } = best!;
  const qBlocks = ceilDiv(problem.seqQ, c.blockQ);
  const kBlocks = ceilDiv(problem.seqK, c.blockK);
  const use = bufferUse(spec, c, problem);
  const baseItems = problem.batch * problem.headsQ * qBlocks;
  const reasons = [
    `${feasible.length} of ${all.length} ${spec.configs ? 'compiled configurations' : 'candidate tilings'} fit every buffer of ${spec.name}`,
    `first level ${c.blockQ}x${c.blockK}: ${baseItems} q-block items over ${spec.parallelUnits} units, lowest ${options.score ? 'caller-scored' : 'modelled'} time`,
    `second level ${c.subQ}x${c.subK} (native tile ${spec.nativeTile.m}x${spec.nativeTile.n}x${spec.nativeTile.k})`,
    ...use.map((u) => `${u.level}: ${u.bytes} of ${u.capacity} bytes`),
    split > 1
      ? `split-KV ${split}: ${baseItems} items alone would leave ${spec.parallelUnits - Math.min(baseItems, spec.parallelUnits)} units idle; partials merge by LSE`
      : 'no split-KV: enough q-block items to fill the units',
  ];
  return {
    blockQ: c.blockQ,
    blockK: c.blockK,
    subQ: c.subQ,
    subK: c.subK,
    stages: c.stages ?? 1,
    splitKV: split,
    ...(spec.configs ? { config: c.name } : {}),
    qBlocks,
    kBlocks,
    workItems: baseItems * split,
    bufferUse: use,
    reasons,
  };
}

function chooseSplit(spec: HardwareSpec, problem: AttentionProblem, c: TileConfig): number {
  const items = problem.batch * problem.headsQ * ceilDiv(problem.seqQ, c.blockQ);
  const kBlocks = ceilDiv(problem.seqK, c.blockK);
  if (items >= spec.parallelUnits || kBlocks < 2) return 1;
  // As many splits as fill the units in one wave (rounding up would spill a few items into a
  // second wave and halve the speed), each split keeping at least two k-blocks of work.
  const wanted = Math.floor(spec.parallelUnits / items);
  return Math.max(1, Math.min(wanted, Math.floor(kBlocks / 2), spec.maxSplitKV ?? 64));
}

/** One piece of planned work: a q-block of one (batch, head), restricted to a range of k-blocks. */
export interface WorkItem {
  readonly batch: number;
  readonly head: number;
  readonly qStart: number;
  readonly qEnd: number;
  readonly split: number;
  readonly kBlockStart: number;
  readonly kBlockEnd: number;
}

/** The k-blocks of split `s` out of `splitKV`: contiguous, balanced ranges covering all blocks. */
export function splitRange(kBlocks: number, splitKV: number, s: number): [number, number] {
  return [Math.floor((s * kBlocks) / splitKV), Math.floor(((s + 1) * kBlocks) / splitKV)];
}

/** Enumerates the plan's work items; together they cover every (row, key) pair exactly once. */
export function* workItems(problem: AttentionProblem, plan: TilePlan): Generator<WorkItem> {
  for (let batch = 0; batch < problem.batch; batch++) {
    for (let head = 0; head < problem.headsQ; head++) {
      for (let qb = 0; qb < plan.qBlocks; qb++) {
        for (let split = 0; split < plan.splitKV; split++) {
          const [kBlockStart, kBlockEnd] = splitRange(plan.kBlocks, plan.splitKV, split);
          yield {
            batch,
            head,
            qStart: qb * plan.blockQ,
            qEnd: Math.min(problem.seqQ, (qb + 1) * plan.blockQ),
            split,
            kBlockStart,
            kBlockEnd,
          };
        }
      }
    }
  }
}
