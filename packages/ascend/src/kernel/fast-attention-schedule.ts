import {
  type AttentionProblem,
  TileKind,
  type TileMap,
  type TilePlan,
  type WorkItem,
  workItems,
} from '@fastattention/core';
import type { CostModel, GmClass } from '../sim/costs.js';
import type { AivPipes, CoreGroup, Machine } from '../sim/scheduler.js';

/** One first-level tile of a work item, as one core group processes it. */
interface Step {
  readonly item: WorkItem;
  readonly kt: number;
  readonly kind: TileKind;
  readonly rows: number;
  readonly cols: number;
  readonly first: boolean;
  readonly last: boolean;
}

export interface FastScheduleResult {
  readonly flops: number;
  readonly handOffs: number;
  readonly computedTiles: number;
  readonly workItems: number;
}

/** Bytes of UB one AIV gives each of its two (ping-pong) S row chunks. */
const UB_HALF_FRACTION = 0.5;

/**
 * Schedules FastAttention on the machine, per core group, in the order the kernel issues it.
 *
 * Work items (b, head, q-block, split) are spread over the core groups by their work (`balance`);
 * each group runs its items back to back. Per first-level tile s of an item:
 *   QK(s)  AIC: MTE2 K block -> L1; per second-level sub-block MTE1 -> L0A/L0B, Cube, FixPipe S -> GM
 *   SM(s)  AIV x2 (half the rows each): MTE2 S rows -> UB, Vector online softmax, MTE3 P -> GM
 *   PV(s)  AIC: MTE2 V and P -> L1; per sub-block MTE1, Cube accumulating in L0C; FixPipe O part -> GM
 *   UPD(s) AIV x2: MTE2 O part -> UB, Vector rescale-and-add; after the last tile divide, cast, MTE3 O
 * Each arrow between engines is a cross-core flag that costs `syncCycles` once per first-level
 * tile: that is what a large first-level block amortizes. The AIC runs one tile ahead
 * (QK(s+1) before PV(s)), with two GM workspace buffers: double buffering across engines.
 */
export function scheduleFastAttention(
  machine: Machine,
  cost: CostModel,
  problem: AttentionProblem,
  plan: TilePlan,
  maps: readonly TileMap[],
  ubBytes: number,
): FastScheduleResult {
  const cores = machine.cores.length;
  const d = problem.headDim;
  const kvClass = kvGmClass(problem, plan, cores, cost);
  let flops = 0;
  let handOffs = 0;
  let computedTiles = 0;
  let itemCount = 0;
  const zeroItems: Array<{ core: number; rows: number }> = [];
  const items: Array<{ steps: Step[]; rows: number; work: number }> = [];
  const kvBytesPerHead = problem.seqK * d * 2 * 2;
  for (const item of workItems(problem, plan)) {
    itemCount++;
    const map = maps[item.batch]!;
    const qt = item.qStart / plan.blockQ;
    const rows = item.qEnd - item.qStart;
    const from = Math.max(item.kBlockStart, map.kStart[qt]!);
    const to = Math.min(item.kBlockEnd, map.kEnd[qt]!);
    const steps: Step[] = [];
    let work = 1;
    for (let kt = from; kt < to; kt++) {
      const kind = map.kinds[qt * map.kTiles + kt] as TileKind;
      if (kind === TileKind.EMPTY) continue; // the tiling-mask's skip: no load, no Cube, no Vector
      const cols = Math.min(plan.blockK, problem.seqK - kt * plan.blockK);
      steps.push({ item, kt, kind, rows, cols, first: false, last: false });
      flops += 4 * rows * cols * d;
      work += rows * cols;
    }
    if (steps.length > 0) {
      steps[0] = { ...steps[0]!, first: true };
      steps[steps.length - 1] = { ...steps[steps.length - 1]!, last: true };
      computedTiles += steps.length;
      handOffs += 3 * steps.length;
    }
    items.push({ steps, rows, work });
  }
  const owner = balance(
    items.map((x) => x.work),
    cores,
  );
  const perCore: Step[][] = Array.from({ length: cores }, () => []);
  items.forEach((x, i) => {
    const core = owner[i]!;
    if (x.steps.length > 0) perCore[core]!.push(...x.steps);
    else zeroItems.push({ core, rows: x.rows });
  });
  // K/V stay in L2 after their first touch when the heads being worked on fit (kvGmClass).
  if (kvClass === 'l2') cost.addCompulsory(problem.batch * problem.headsKV * kvBytesPerHead);
  for (let c = 0; c < cores; c++)
    scheduleCore(machine.cores[c]!, perCore[c]!, cost, plan, d, kvClass, ubBytes);
  for (const { core, rows } of zeroItems)
    writeZeroRows(machine.cores[core]!, cost, rows, d, plan.splitKV > 1);
  if (plan.splitKV > 1) scheduleCombine(machine, cost, problem, plan);
  return { flops, handOffs, computedTiles, workItems: itemCount };
}

/**
 * Which core group runs each item: largest first onto the least-loaded group (LPT), the balance a
 * kernel's host-side tiling function computes so that causal q-blocks (whose work grows with their
 * index) do not pile up on a few cores. Each group then runs its items in their original order.
 */
function balance(work: readonly number[], cores: number): Int32Array {
  const owner = new Int32Array(work.length);
  const load = new Float64Array(cores);
  const order = work.map((_, i) => i).sort((a, b) => work[b]! - work[a]! || a - b);
  for (const i of order) {
    let best = 0;
    for (let c = 1; c < cores; c++) if (load[c]! < load[best]!) best = c;
    owner[i] = best;
    load[best]! += work[i]!;
  }
  return owner;
}

/** K/V re-reads hit L2 when the K/V of the heads in flight at once fit in half of it. */
function kvGmClass(problem: AttentionProblem, plan: TilePlan, cores: number, cost: CostModel): GmClass {
  const itemsPerHead = plan.qBlocks * plan.splitKV;
  const groupSize = problem.headsQ / problem.headsKV;
  const headsInFlight = Math.min(
    problem.batch * problem.headsKV,
    Math.ceil(cores / (itemsPerHead * groupSize)) + 1,
  );
  const workingSet = headsInFlight * problem.seqK * problem.headDim * 2 * 2;
  return workingSet <= cost.l2Bytes / 2 ? 'l2' : 'hbm';
}

function scheduleCore(
  core: CoreGroup,
  steps: readonly Step[],
  cost: CostModel,
  plan: TilePlan,
  d: number,
  kvClass: GmClass,
  ubBytes: number,
): void {
  if (steps.length === 0) return;
  const { aic, aiv } = core;
  const lat = cost.gmLatency;
  const sync = cost.syncCycles;
  const split = plan.splitKV > 1;
  // Ready times of hand-offs, indexed by step.
  const sReady = new Float64Array(steps.length);
  const pReady = new Float64Array(steps.length);
  const oReady = new Float64Array(steps.length);
  // Ping-pong buffers: [L1 K, L1 V] per step parity; L0A/L0B and L0C per sub-block parity.
  const kBufFree = [0, 0];
  const vBufFree = [0, 0];
  const l0abFree = [0, 0];
  const l0cFree = [0, 0];
  const ubFree: [number[], number[]] = [
    [0, 0],
    [0, 0],
  ];
  let l0Turn = 0;
  let qReady = 0;

  const qk = (s: number): void => {
    const st = steps[s]!;
    const issued = aic.Scalar.run(0, cost.p.scalarPerTile, `tile ${st.kt} issue`);
    if (st.first) qReady = aic.MTE2.run(issued, cost.gmRead(st.rows * d * 2, 'hbm'), 'Q -> L1') + lat;
    const kReady =
      aic.MTE2.run(Math.max(issued, kBufFree[s & 1]!), cost.gmRead(st.cols * d * 2, kvClass), 'K -> L1') +
      lat;
    let lastRead = 0;
    let lastFix = 0;
    for (let q0 = 0; q0 < st.rows; q0 += plan.subQ) {
      const sq = Math.min(plan.subQ, st.rows - q0);
      for (let k0 = 0; k0 < st.cols; k0 += plan.subK) {
        const sk = Math.min(plan.subK, st.cols - k0);
        const t = l0Turn++ & 1;
        const bytes = (k0 === 0 ? sq * d * 2 : 0) + sk * d * 2;
        lastRead = aic.MTE1.run(Math.max(kReady, qReady, l0abFree[t]!), cost.mte1(bytes), 'Q,K -> L0A/B');
        const cubeEnd = aic.Cube.run(Math.max(lastRead, l0cFree[t]!), cost.cube(sq, sk, d), 'S = QK^T');
        l0abFree[t] = cubeEnd;
        lastFix = aic.FixPipe.run(cubeEnd, cost.gmWrite(sq * sk * 4, 'l2', 'FixPipe'), 'S -> GM');
        l0cFree[t] = lastFix;
      }
    }
    kBufFree[s & 1] = lastRead;
    sReady[s] = lastFix + sync;
  };

  const sm = (s: number): void => {
    const st = steps[s]!;
    let done = 0;
    // Vector chunks are whole rows of the first-level block: the row max must see every column.
    const perRow = st.cols * (4 + 2);
    const chunkRows = Math.max(1, Math.floor((ubBytes * UB_HALF_FRACTION) / 2 / perRow));
    const passes = 1 + 1 + 1 + cost.p.vectorExpPasses + 1 + 1 + (st.kind === TileKind.PARTIAL ? 1 : 0);
    forEachHalf(st.rows, (a, rows) => {
      const v = aiv[a]!;
      const issued = v.Scalar.run(0, cost.p.scalarPerTile, 'wait S flag');
      let turn = 0;
      for (let r0 = 0; r0 < rows; r0 += chunkRows) {
        const r = Math.min(chunkRows, rows - r0);
        const t = turn++ & 1;
        const buf = ubFree[a]!;
        const loaded =
          v.MTE2.run(Math.max(sReady[s]!, issued, buf[t]!), cost.gmRead(r * st.cols * 4, 'l2'), 'S -> UB') +
          lat;
        const vec = v.Vector.run(loaded, cost.vector(r * st.cols, passes, passes + 2), 'online softmax');
        buf[t] = vec;
        done = Math.max(done, v.MTE3.run(vec, cost.gmWrite(r * st.cols * 2, 'l2', 'MTE3'), 'P -> GM'));
      }
    });
    pReady[s] = done + sync;
  };

  const pv = (s: number): void => {
    const st = steps[s]!;
    const vReady = aic.MTE2.run(vBufFree[s & 1]!, cost.gmRead(st.cols * d * 2, kvClass), 'V -> L1') + lat;
    const pLoaded = aic.MTE2.run(pReady[s]!, cost.gmRead(st.rows * st.cols * 2, 'l2'), 'P -> L1') + lat;
    let lastRead = 0;
    let lastFix = 0;
    for (let q0 = 0; q0 < st.rows; q0 += plan.subQ) {
      const sq = Math.min(plan.subQ, st.rows - q0);
      const t = l0Turn++ & 1;
      let cubeEnd = 0;
      for (let k0 = 0; k0 < st.cols; k0 += plan.subK) {
        const sk = Math.min(plan.subK, st.cols - k0);
        lastRead = aic.MTE1.run(
          Math.max(vReady, pLoaded, l0abFree[t]!),
          cost.mte1((sq + d) * sk * 2),
          'P,V -> L0A/B',
        );
        cubeEnd = aic.Cube.run(Math.max(lastRead, l0cFree[t]!), cost.cube(sq, d, sk), 'O += PV');
        l0abFree[t] = cubeEnd;
      }
      lastFix = aic.FixPipe.run(cubeEnd, cost.gmWrite(sq * d * 4, 'l2', 'FixPipe'), 'O part -> GM');
      l0cFree[t] = lastFix;
    }
    vBufFree[s & 1] = lastRead;
    oReady[s] = lastFix + sync;
  };

  const upd = (s: number): void => {
    const st = steps[s]!;
    forEachHalf(st.rows, (a, rows) => {
      const v = aiv[a]!;
      const loaded = v.MTE2.run(oReady[s]!, cost.gmRead(rows * d * 4, 'l2'), 'O part -> UB') + lat;
      const vec = v.Vector.run(loaded, cost.vector(rows * d, 2, 2), 'O = O*corr + part');
      if (!st.last) return;
      const fin = v.Vector.run(vec, cost.vector(rows * d, 2, 3), 'O /= l, cast');
      const outBytes = split ? rows * (d + 1) * 4 : rows * d * 2 + rows * 4;
      v.MTE3.run(
        fin,
        cost.gmWrite(outBytes, split ? 'l2' : 'hbm', 'MTE3'),
        split ? 'O part, lse -> GM' : 'O, lse -> GM',
      );
    });
  };

  qk(0);
  sm(0);
  for (let s = 0; s < steps.length; s++) {
    if (s + 1 < steps.length) {
      qk(s + 1);
      sm(s + 1);
    }
    pv(s);
    upd(s);
  }
}

/** Runs `fn` for each AIV of the pair with its share of `rows` (the 1:2 split of a q-block). */
function forEachHalf(rows: number, fn: (aiv: 0 | 1, rows: number) => void): void {
  const first = Math.ceil(rows / 2);
  if (first > 0) fn(0, first);
  if (rows - first > 0) fn(1, rows - first);
}

/** A work item with no visible key (masked or zero-length row): the AIVs write zeros and -inf. */
function writeZeroRows(core: CoreGroup, cost: CostModel, rows: number, d: number, split: boolean): void {
  forEachHalf(rows, (a, r) => {
    const v: AivPipes = core.aiv[a];
    const vec = v.Vector.run(0, cost.vector(r * d, 1, 2), 'dup 0, -inf');
    v.MTE3.run(
      vec,
      cost.gmWrite(r * (split ? (d + 1) * 4 : d * 2 + 4), split ? 'l2' : 'hbm', 'MTE3'),
      'O, lse -> GM',
    );
  });
}

/**
 * Split-KV decode ends with a combine kernel: per (batch, head, q-block) the AIVs read every
 * split's partial O and LSE and merge them by LSE (mergePartials' formula).
 */
function scheduleCombine(machine: Machine, cost: CostModel, problem: AttentionProblem, plan: TilePlan): void {
  machine.barrier(machine.finish + cost.syncCycles);
  const d = problem.headDim;
  const groups = problem.batch * problem.headsQ * plan.qBlocks;
  const aivs = machine.cores.length * 2;
  for (let g = 0; g < groups; g++) {
    const qb = g % plan.qBlocks;
    const rows = Math.min(plan.blockQ, problem.seqQ - qb * plan.blockQ);
    const slot = g % aivs;
    const v = machine.cores[slot >> 1]!.aiv[(slot & 1) as 0 | 1];
    const loaded =
      v.MTE2.run(0, cost.gmRead(plan.splitKV * rows * (d + 1) * 4, 'l2'), 'partials -> UB') + cost.gmLatency;
    const vec = v.Vector.run(
      loaded,
      cost.vector(plan.splitKV * rows * d, 3, 4 + plan.splitKV),
      'merge by LSE',
    );
    v.MTE3.run(vec, cost.gmWrite(rows * d * 2 + rows * 4, 'hbm', 'MTE3'), 'O, lse -> GM');
  }
}
