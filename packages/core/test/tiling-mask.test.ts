import { describe, expect, it } from 'vitest';
import {
  bandOf,
  classifyBatch,
  classifyTiles,
  TileKind,
  TileMaskPattern,
  tileMapBytes,
} from '../src/index.js';
import { allowedByDefinition, randInt, randomMask, randomSeed, rng } from './helpers.js';

describe('classifyTiles (tiling-mask)', () => {
  it('agrees with per-element classification for random shapes, tiles, masks and valid lengths', () => {
    const seed = randomSeed();
    const rand = rng(seed);
    for (let t = 0; t < 300; t++) {
      const seqQ = randInt(rand, 1, 70);
      const seqK = randInt(rand, 1, 70);
      const lk = randInt(rand, 0, seqK);
      const mask = randomMask(rand);
      const blockQ = randInt(rand, 1, 20);
      const blockK = randInt(rand, 1, 20);
      const map = classifyTiles(mask, { seqQ, seqK, lk }, { blockQ, blockK });
      const pattern = new TileMaskPattern(map);
      const where = `seed ${seed} case ${t}: ${JSON.stringify({ seqQ, seqK, lk, mask, blockQ, blockK })}`;
      for (let qt = 0; qt < map.qTiles; qt++) {
        for (let kt = 0; kt < map.kTiles; kt++) {
          let allowed = 0;
          let cells = 0;
          const q1 = Math.min(seqQ, (qt + 1) * blockQ);
          const k1 = Math.min(seqK, (kt + 1) * blockK);
          for (let i = qt * blockQ; i < q1; i++) {
            for (let j = kt * blockK; j < k1; j++) {
              cells++;
              if (allowedByDefinition(mask, i, j, seqQ, lk)) allowed++;
            }
          }
          const expected =
            allowed === 0 ? TileKind.EMPTY : allowed === cells ? TileKind.FULL : TileKind.PARTIAL;
          expect(map.kinds[qt * map.kTiles + kt], `${where} tile ${qt},${kt}`).toBe(expected);
          if (expected === TileKind.PARTIAL) {
            // the tile's element mask, generated from the pattern, equals the definition
            const tile = pattern.fill(qt, kt);
            for (let i = qt * blockQ; i < q1; i++) {
              for (let j = kt * blockK; j < k1; j++) {
                const bit = tile[(i - qt * blockQ) * blockK + (j - kt * blockK)];
                expect(bit, `${where} element ${i},${j}`).toBe(
                  allowedByDefinition(mask, i, j, seqQ, lk) ? 1 : 0,
                );
              }
            }
          }
          const inRun = kt >= map.kStart[qt]! && kt < map.kEnd[qt]!;
          if (expected !== TileKind.EMPTY)
            expect(inRun, `${where}: non-empty tile ${qt},${kt} outside its run`).toBe(true);
        }
      }
    }
  });

  it('skips about half the tiles of causal self-attention', () => {
    const map = classifyTiles({ kind: 'causal' }, { seqQ: 1024, seqK: 1024 }, { blockQ: 64, blockK: 64 });
    expect(map.counts.partial).toBe(16); // the diagonal
    expect(map.counts.full).toBe((16 * 15) / 2);
    expect(map.counts.empty).toBe((16 * 15) / 2);
  });

  it('keeps memory proportional to the number of tiles, not S², for causal S = 32768 with 128x128 tiles', () => {
    const S = 32768;
    const map = classifyTiles({ kind: 'causal' }, { seqQ: S, seqK: S }, { blockQ: 128, blockK: 128 });
    const pattern = new TileMaskPattern(map);
    for (let qt = 0; qt < map.qTiles; qt++) {
      for (let kt = map.kStart[qt]!; kt < map.kEnd[qt]!; kt++) {
        if (map.kinds[qt * map.kTiles + kt] === TileKind.PARTIAL) pattern.diagonal(qt, kt);
      }
    }
    const tiles = map.qTiles * map.kTiles; // 65536
    const bytes = tileMapBytes(map) + pattern.bytes;
    expect(bytes).toBeLessThanOrEqual(tiles * 1 + map.qTiles * 8 + 2 * (128 + 128));
    expect(bytes).toBeLessThan((S * S) / 1000); // a materialized mask would be S² = 1 GiB
    // every diagonal tile shares one pattern vector: the FastAttention observation
    expect(pattern.bytes).toBe(128 + 128 - 1);
  });

  it('shares tile maps between batch rows of equal length and packs them for native code', () => {
    const lens = Int32Array.of(10, 7, 10);
    const { maps, packed, kStart, kEnd } = classifyBatch(
      { kind: 'causal' },
      { seqQ: 5, seqK: 10 },
      { blockQ: 4, blockK: 4 },
      lens,
    );
    expect([...kStart]).toEqual([...maps[0]!.kStart, ...maps[1]!.kStart, ...maps[2]!.kStart]);
    expect([...kEnd]).toEqual([...maps[0]!.kEnd, ...maps[1]!.kEnd, ...maps[2]!.kEnd]);
    expect(maps[0]).toBe(maps[2]);
    expect(maps[1]).not.toBe(maps[0]);
    expect(packed.length).toBe(3 * maps[0]!.kinds.length);
    expect([...packed.subarray(maps[0]!.kinds.length, 2 * maps[0]!.kinds.length)]).toEqual([
      ...maps[1]!.kinds,
    ]);
  });

  it('describes every mask as a band', () => {
    expect(bandOf({ kind: 'causal' })).toEqual({ left: Number.POSITIVE_INFINITY, right: 0 });
    expect(bandOf({ kind: 'window', left: 3, right: 2 })).toEqual({ left: 3, right: 2 });
  });
});
