import {
  type DType,
  type MaskSpec,
  type ResolvedAttentionInput,
  validateAttentionInput,
} from '../src/index.js';
import { randomInput as kitRandomInput } from '../src/testing/index.js';

export { randomSeed, randomValues, rng } from '../src/testing/index.js';

export const randInt = (rand: () => number, lo: number, hi: number): number =>
  lo + Math.floor(rand() * (hi - lo + 1));

export interface CaseShape {
  batch: number;
  seqQ: number;
  seqK: number;
  headsQ: number;
  headsKV: number;
  headDim: number;
}

export function randomInput<D extends DType>(
  rand: () => number,
  dtype: D,
  shape: CaseShape,
  extra: { mask?: MaskSpec; seqLensK?: Int32Array; scale?: number } = {},
): ResolvedAttentionInput<D> {
  return validateAttentionInput(kitRandomInput(rand, dtype, shape, extra));
}

/** ||a - b|| / ||b|| over finite entries; NaN anywhere in `a` gives Infinity. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    if (Number.isNaN(x)) return Number.POSITIVE_INFINITY;
    num += (x - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Max relative difference of LSEs, with -Infinity required to match exactly. */
export function lseError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (y === Number.NEGATIVE_INFINITY || x === Number.NEGATIVE_INFINITY) {
      if (x !== y) return Number.POSITIVE_INFINITY;
      continue;
    }
    worst = Math.max(worst, Math.abs(x - y) / Math.max(1, Math.abs(y)));
  }
  return worst;
}

/** The contract's mask, written from its text rather than from the library's band helper. */
export function allowedByDefinition(mask: MaskSpec, i: number, j: number, seqQ: number, lk: number): boolean {
  if (j >= lk) return false;
  const off = lk - seqQ;
  switch (mask.kind) {
    case 'none':
      return true;
    case 'causal':
      return j <= i + off;
    case 'window':
      return i + off - mask.left <= j && j <= i + off + mask.right;
  }
}

export const MASKS: readonly MaskSpec[] = [
  { kind: 'none' },
  { kind: 'causal' },
  { kind: 'window', left: 3, right: 0 },
  { kind: 'window', left: 5, right: 2 },
  { kind: 'window', left: 0, right: 4 },
  { kind: 'window', left: Number.POSITIVE_INFINITY, right: 1 },
  { kind: 'window', left: 2, right: Number.POSITIVE_INFINITY },
];

export function randomMask(rand: () => number): MaskSpec {
  return MASKS[Math.floor(rand() * MASKS.length)]!;
}

/** A random shape with GQA, a random mask and random valid lengths (some rows may have none). */
export function randomCase(
  rand: () => number,
  max: { batch: number; seqQ: number; seqK: number; group: number; headsKV: number; headDim: number },
): { shape: CaseShape; mask: MaskSpec; seqLensK: Int32Array } {
  const headsKV = randInt(rand, 1, max.headsKV);
  const shape = {
    batch: randInt(rand, 1, max.batch),
    seqQ: randInt(rand, 1, max.seqQ),
    seqK: randInt(rand, 1, max.seqK),
    headsQ: headsKV * randInt(rand, 1, max.group),
    headsKV,
    headDim: randInt(rand, 1, max.headDim),
  };
  const seqLensK = Int32Array.from({ length: shape.batch }, () => randInt(rand, 0, shape.seqK));
  return { shape, mask: randomMask(rand), seqLensK };
}
