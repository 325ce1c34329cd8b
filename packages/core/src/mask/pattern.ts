import type { TileMap } from './classify.js';

/**
 * Per-tile mask generation, FastAttention's tiling-mask: a PARTIAL tile's mask is never stored.
 * Inside a tile, element (r, c) is allowed iff its diagonal offset `t = base + c - r` lies in the
 * band and its key is valid, where `base = k0 - q0 - (lk - seqQ)`. So a tile's mask is a sliding
 * window over one small vector per distinct `base` (length blockQ + blockK - 1), and tiles on the
 * same diagonal (every diagonal tile of causal self-attention) share it.
 */
export class TileMaskPattern {
  readonly #map: TileMap;
  readonly #vectors = new Map<number, Uint8Array>();

  constructor(map: TileMap) {
    this.#map = map;
  }

  /** The diagonal vector for tile (qt, kt): entry `c - r + blockQ - 1` says whether (r, c) is in the band. */
  diagonal(qt: number, kt: number): Uint8Array {
    const { blockQ, blockK, lk, seqQ, band } = this.#map;
    const base = kt * blockK - qt * blockQ - (lk - seqQ);
    let vector = this.#vectors.get(base);
    if (!vector) {
      vector = new Uint8Array(blockQ + blockK - 1);
      for (let u = 0; u < vector.length; u++) {
        const t = base + u - (blockQ - 1);
        vector[u] = t >= -band.left && t <= band.right ? 1 : 0;
      }
      this.#vectors.set(base, vector);
    }
    return vector;
  }

  /** Writes tile (qt, kt)'s mask into `out` (blockQ x blockK, row-major; 1 = allowed). */
  fill(
    qt: number,
    kt: number,
    out: Uint8Array = new Uint8Array(this.#map.blockQ * this.#map.blockK),
  ): Uint8Array {
    const { blockQ, blockK, lk, seqQ } = this.#map;
    const vector = this.diagonal(qt, kt);
    const k0 = kt * blockK;
    const rows = Math.min(blockQ, seqQ - qt * blockQ);
    const validCols = Math.max(0, Math.min(blockK, lk - k0));
    out.fill(0);
    for (let r = 0; r < rows; r++) {
      const offset = blockQ - 1 - r;
      for (let c = 0; c < validCols; c++) out[r * blockK + c] = vector[c + offset]!;
    }
    return out;
  }

  /** Bytes held by the cached vectors: O(distinct diagonals x (blockQ + blockK)). */
  get bytes(): number {
    let total = 0;
    for (const v of this.#vectors.values()) total += v.byteLength;
    return total;
  }
}
