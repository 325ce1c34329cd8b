// The paged KV bookkeeping the scheduler will use: allocation and release, blocks shared by
// prompts with a common prefix (only once computed and committed), the last prompt token always
// left to compute, least-recently-released eviction, and refusals that change nothing.
import { describe, expect, it } from 'vitest';
import { BlockManager } from '../src/block-manager.js';

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('BlockManager', () => {
  it('allocates and frees, refusing without side effects when blocks run out', () => {
    const m = new BlockManager(4, 4);
    const a = m.allocate(range(9))!; // 3 blocks
    expect(a.blocks.length).toBe(3);
    expect(m.availableBlocks).toBe(1);
    expect(m.allocate(range(5, 100))).toBeUndefined(); // needs 2
    expect(m.availableBlocks).toBe(1);
    expect(m.reserve(a, 12)).toBe(true); // fills block 3
    expect(a.blocks.length).toBe(3);
    expect(m.reserve(a, 13)).toBe(true); // a 4th block
    expect(m.reserve(a, 14)).toBe(true);
    expect(m.availableBlocks).toBe(0);
    expect(m.reserve(a, 17)).toBe(false); // a 5th: none left, nothing changed
    expect(a.blocks.length).toBe(4);
    expect(m.allocate(range(1))).toBeUndefined();
    m.free(a);
    expect(m.availableBlocks).toBe(4);
    expect(() => new BlockManager(4, 6)).toThrow(expect.objectContaining({ field: 'blockSize' }));
  });

  it('shares committed full blocks of a common prefix, and counts the hits', () => {
    const m = new BlockManager(8, 4);
    const a = m.allocate(range(10))!; // blocks [0-3], [4-7], [8-9]
    // Not committed yet (its keys and values are not computed): an identical prompt shares nothing.
    const early = m.allocate(range(10))!;
    expect(early.cachedTokens).toBe(0);
    m.free(early);
    m.commit(a, 10);
    const b = m.allocate([...range(8), 50, 51, 52])!;
    expect(b.cachedTokens).toBe(8);
    expect(b.blocks.slice(0, 2)).toEqual(a.blocks.slice(0, 2));
    expect(b.blocks[2]).not.toBe(a.blocks[2]);
    // A different first block shares nothing, even with the same second block.
    expect(m.allocate([99, 1, 2, 3, 4, 5, 6, 7, 8])!.cachedTokens).toBe(0);
    // A prompt of exactly cached blocks still computes its last token.
    expect(m.allocate(range(8))!.cachedTokens).toBe(4);
    expect(m.prefixHits).toEqual({ hitTokens: 12, lookupTokens: 10 + 10 + 11 + 9 + 8 });
  });

  it('keeps released cached blocks until they are needed, evicting the least recently released', () => {
    const m = new BlockManager(4, 2);
    const a = m.allocate([1, 2, 3, 4, 5])!; // 3 blocks
    m.commit(a, 5);
    const held = [...a.blocks];
    m.free(a);
    expect(m.availableBlocks).toBe(4);
    // Still cached: a new prompt with the same prefix reuses both full blocks.
    const b = m.allocate([1, 2, 3, 4, 9])!;
    expect(b.cachedTokens).toBe(4);
    expect(b.blocks.slice(0, 2)).toEqual(held.slice(0, 2));
    m.commit(b, 5);
    m.free(b);
    // Four new blocks evict everything cached; the old prefix is gone.
    const c = m.allocate(range(8, 100))!;
    expect(c.blocks.length).toBe(4);
    m.free(c);
    expect(m.allocate([1, 2, 3, 4, 5])!.cachedTokens).toBe(0);
  });

  it('a shared block stays held while any sequence holds it', () => {
    const m = new BlockManager(3, 2);
    const a = m.allocate([1, 2, 3])!;
    m.commit(a, 3);
    const b = m.allocate([1, 2, 7])!; // shares block 0
    expect(b.cachedTokens).toBe(2);
    expect(m.availableBlocks).toBe(0);
    m.free(a);
    expect(m.availableBlocks).toBe(1); // a's second block; the shared one is still b's
    const c = m.allocate([5])!;
    expect(c.blocks).toHaveLength(1);
    expect(c.blocks[0]).not.toBe(b.blocks[0]);
  });
});
