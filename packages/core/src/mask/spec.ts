/**
 * The attention masks of the contract. Alignment is bottom-right: with `off = Lk - seqQ`,
 * causal allows key `j <= i + off`; a window allows `i + off - left <= j <= i + off + right`.
 * Decode (seqQ = 1) and chunked prefill therefore need no special case.
 */
export type MaskSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'causal' }
  | {
      readonly kind: 'window';
      /** Keys allowed before the aligned diagonal: a non-negative integer or Infinity. */
      readonly left: number;
      /** Keys allowed after the aligned diagonal: a non-negative integer or Infinity. */
      readonly right: number;
    };

export type MaskKind = MaskSpec['kind'];

export const MASK_KINDS: readonly MaskKind[] = ['none', 'causal', 'window'];

/**
 * Every mask of the contract is a band around the aligned diagonal, clipped to the valid keys:
 * key `j` is allowed for row `i` iff `j < Lk` and `-left <= j - (i + off) <= right`.
 * Describing masks this way is what lets a tile's mask come from a small pattern.
 */
export interface Band {
  readonly left: number;
  readonly right: number;
}

export function bandOf(mask: MaskSpec): Band {
  switch (mask.kind) {
    case 'none':
      return { left: Number.POSITIVE_INFINITY, right: Number.POSITIVE_INFINITY };
    case 'causal':
      return { left: Number.POSITIVE_INFINITY, right: 0 };
    case 'window':
      return { left: mask.left, right: mask.right };
  }
}

/**
 * The allowed keys of query row `i` as a half-open range `[start, end)`; empty when start >= end.
 * `lk` is the row's valid key count, `seqQ` the number of query rows.
 */
export function allowedKeys(band: Band, i: number, seqQ: number, lk: number): [number, number] {
  const diag = i + lk - seqQ;
  const start = Math.max(0, diag - band.left);
  const end = Math.min(lk, diag + band.right + 1);
  return [start, Math.max(start, end)];
}
