import type { AttentionProblem } from '@fastattention/core';
import type { CostModel, GmClass } from '../sim/costs.js';
import type { AivPipes, Machine } from '../sim/scheduler.js';
import type { ScoreDType } from './standard.js';

/** Output tile of the two matmul kernels: 128 x 128 f32 fits L0C twice (ping-pong). */
const MM_TILE = 128;
/** Reduction chunk of the P V kernel (keys per L1 load). */
const PV_CHUNK = 256;

export interface StandardScheduleResult {
  readonly flops: number;
  readonly kernels: number;
  readonly scoreBytes: number;
  readonly maskBytes: number;
  readonly scoreClass: GmClass;
}

/**
 * Schedules standard attention as three kernels separated by launch barriers:
 * QKᵀ on the AICs writing S to GM, a masked softmax on all AIVs reading S and the full S x S mask
 * and writing P, and P V on the AICs. No tile is skipped: the mask is applied element by element,
 * after every score has been computed and stored. S, P and the mask stay in L2 only while they fit.
 */
export function scheduleStandard(
  machine: Machine,
  cost: CostModel,
  problem: AttentionProblem,
  scoreDType: ScoreDType,
  launchCycles: number,
  ubBytes: number,
): StandardScheduleResult {
  const { batch, seqQ, seqK, headsQ, headDim: d } = problem;
  const sBytes = scoreDType === 'f32' ? 4 : 2;
  const scoreBytes = batch * headsQ * seqQ * seqK * sBytes;
  const maskBytes = batch * seqQ * seqK;
  const scoreClass: GmClass = scoreBytes * 2 + maskBytes <= cost.l2Bytes / 2 ? 'l2' : 'hbm';
  const maskClass: GmClass = maskBytes <= cost.l2Bytes / 2 ? 'l2' : 'hbm';
  const cores = machine.cores;
  const lat = cost.gmLatency;
  // Q, K, V are read from HBM once, re-reads hit L2; O goes to HBM.
  cost.addCompulsory(batch * (seqQ * headsQ + 2 * seqK * problem.headsKV) * d * 2);
  if (maskClass === 'l2') cost.addCompulsory(maskBytes);

  // Kernel 1: S = scale * Q Kᵀ.
  const mTiles = Math.ceil(seqQ / MM_TILE);
  const nTiles = Math.ceil(seqK / MM_TILE);
  let n = 0;
  const l1Free = cores.map(() => [0, 0]);
  const l0Free = cores.map(() => [0, 0]);
  for (let bh = 0; bh < batch * headsQ; bh++) {
    for (let mt = 0; mt < mTiles; mt++) {
      const rows = Math.min(MM_TILE, seqQ - mt * MM_TILE);
      for (let nt = 0; nt < nTiles; nt++) {
        const cols = Math.min(MM_TILE, seqK - nt * MM_TILE);
        const c = n % cores.length;
        const t = Math.floor(n / cores.length) & 1;
        n++;
        const aic = cores[c]!.aic;
        const issued = aic.Scalar.run(0, cost.p.scalarPerTile, 'tile issue');
        const loaded =
          aic.MTE2.run(
            Math.max(issued, l1Free[c]![t]!),
            cost.gmRead((rows + cols) * d * 2, 'l2'),
            'Q,K -> L1',
          ) + lat;
        const read = aic.MTE1.run(loaded, cost.mte1((rows + cols) * d * 2), 'Q,K -> L0A/B');
        l1Free[c]![t] = read;
        const cube = aic.Cube.run(Math.max(read, l0Free[c]![t]!), cost.cube(rows, cols, d), 'S = QK^T');
        l0Free[c]![t] = aic.FixPipe.run(
          cube,
          cost.gmWrite(rows * cols * sBytes, scoreClass, 'FixPipe'),
          'S -> GM',
        );
      }
    }
  }
  machine.barrier(machine.finish + launchCycles);

  // Kernel 2: masked softmax over whole rows. A row chunk that does not fit half the UB (ping-pong)
  // is read twice: a pass for max and sum, then a pass that normalizes.
  const perRowUb = seqK * (sBytes + 1 + 4 + 2);
  const fitRows = Math.floor(ubBytes / 2 / perRowUb);
  const twoPass = fitRows < 1;
  const chunkRows = Math.max(1, Math.min(fitRows, 64));
  const passes = twoPass ? 14 + cost.p.vectorExpPasses : 8 + cost.p.vectorExpPasses;
  const reads = twoPass ? 2 : 1;
  const aivs: AivPipes[] = cores.flatMap((c) => [c.aiv[0], c.aiv[1]]);
  const ubFree = aivs.map(() => [0, 0]);
  n = 0;
  for (let bh = 0; bh < batch * headsQ; bh++) {
    for (let r0 = 0; r0 < seqQ; r0 += chunkRows) {
      const rows = Math.min(chunkRows, seqQ - r0);
      const a = n % aivs.length;
      const t = Math.floor(n / aivs.length) & 1;
      n++;
      const v = aivs[a]!;
      const elements = rows * seqK;
      const loadS = cost.gmRead(reads * elements * sBytes, scoreClass);
      const loadMask = cost.gmRead(reads * elements, maskClass);
      const loaded = v.MTE2.run(ubFree[a]![t]!, loadS + loadMask, 'S, mask -> UB') + lat;
      const vec = v.Vector.run(loaded, cost.vector(elements, passes, passes + 4), 'masked softmax');
      ubFree[a]![t] = vec;
      v.MTE3.run(vec, cost.gmWrite(elements * sBytes + rows * 4, scoreClass, 'MTE3'), 'P, lse -> GM');
    }
  }
  machine.barrier(machine.finish + launchCycles);

  // Kernel 3: O = P V, accumulating over key chunks in L0C.
  n = 0;
  const l1 = cores.map(() => [0, 0]);
  for (let bh = 0; bh < batch * headsQ; bh++) {
    for (let mt = 0; mt < mTiles; mt++) {
      const rows = Math.min(MM_TILE, seqQ - mt * MM_TILE);
      const c = n++ % cores.length;
      const aic = cores[c]!.aic;
      aic.Scalar.run(0, cost.p.scalarPerTile, 'tile issue');
      let cube = 0;
      let turn = 0;
      for (let k0 = 0; k0 < seqK; k0 += PV_CHUNK) {
        const cols = Math.min(PV_CHUNK, seqK - k0);
        const t = turn++ & 1;
        const loaded =
          aic.MTE2.run(
            l1[c]![t]!,
            cost.gmRead(rows * cols * sBytes, scoreClass) + cost.gmRead(cols * d * 2, 'l2'),
            'P,V -> L1',
          ) + lat;
        const read = aic.MTE1.run(loaded, cost.mte1((rows + d) * cols * 2), 'P,V -> L0A/B');
        l1[c]![t] = read;
        cube = aic.Cube.run(read, cost.cube(rows, d, cols), 'O += PV');
      }
      aic.FixPipe.run(cube, cost.gmWrite(rows * d * 2, 'hbm', 'FixPipe'), 'O -> GM');
    }
  }
  const flops = 4 * batch * headsQ * seqQ * seqK * d;
  return { flops, kernels: 3, scoreBytes, maskBytes, scoreClass };
}
