/**
 * The paged KV cache's bookkeeping for many sequences (the scheduler's, as in vLLM's block
 * manager): which cache blocks each sequence owns, reference counts for blocks that several
 * sequences share, and a prefix cache: a full block is known by a chain digest of every token up
 * to its end, so a new prompt that starts like an earlier one reuses that one's computed blocks.
 * Blocks nobody holds stay cached until a new block is needed (least recently released first).
 * Pure bookkeeping: the KV tensors themselves belong to the caller.
 */
import { createHash } from 'node:crypto';
import { invalidInput } from '@fastattention/core';

/** A sequence's blocks, in order; token t lives in blocks[floor(t / blockSize)]. */
export interface SequenceBlocks {
  readonly blocks: number[];
  /** Prompt tokens whose keys and values were already in the cache (prefix hits): skip them. */
  readonly cachedTokens: number;
  /**
   * The sequence's token ids as far as they are known (the chain hashes of its full blocks are
   * computed from them); the caller appends each generated token once it has it.
   */
  readonly tokens: number[];
  /** Full blocks already registered in the prefix cache, and the chain key of the last of them. */
  committed: number;
  lastKey: string;
}

interface Block {
  refs: number;
  /** Chain hash and tokens of a full, computed block (undefined: not in the prefix cache). */
  key?: string;
}

export class BlockManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly #blocks: Block[];
  /** Never used, or released and uncached. */
  readonly #free: number[] = [];
  /** Released but cached, least recently released first (a Map keeps insertion order). */
  readonly #evictable = new Map<number, true>();
  readonly #byKey = new Map<string, number>();
  #hitTokens = 0;
  #lookupTokens = 0;

  constructor(numBlocks: number, blockSize: number) {
    if (!Number.isSafeInteger(numBlocks) || numBlocks < 1) {
      throw invalidInput('numBlocks', `expected a positive integer, got ${numBlocks}`);
    }
    if (!Number.isSafeInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0) {
      throw invalidInput('blockSize', `expected a power of two, got ${blockSize}`);
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.#blocks = Array.from({ length: numBlocks }, () => ({ refs: 0 }));
    for (let i = numBlocks - 1; i >= 0; i--) this.#free.push(i);
  }

  /** Blocks a new block could come from: never used, released, or cached but unheld. */
  get availableBlocks(): number {
    return this.#free.length + this.#evictable.size;
  }

  /** Blocks some sequence holds. */
  get usedBlocks(): number {
    return this.numBlocks - this.availableBlocks;
  }

  /** Prompt tokens found in the prefix cache, of all prompt tokens looked up. */
  get prefixHits(): { readonly hitTokens: number; readonly lookupTokens: number } {
    return { hitTokens: this.#hitTokens, lookupTokens: this.#lookupTokens };
  }

  /**
   * Blocks for a prompt, sharing the cached blocks its prefix matches. At least the last prompt
   * token is always left to compute (its logits are needed). Undefined, with nothing changed, when
   * too few blocks are available, or fewer than `keep` would be left. The `tokens` array is kept,
   * not copied: the caller appends generated tokens to it.
   */
  allocate(tokens: number[], options: { readonly keep?: number } = {}): SequenceBlocks | undefined {
    const needed = Math.max(1, Math.ceil(tokens.length / this.blockSize));
    const hits: number[] = [];
    let hitKey = '';
    for (let b = 0; b < needed && (b + 1) * this.blockSize < tokens.length; b++) {
      const key = chainKey(hitKey, tokens, b, this.blockSize);
      const block = this.#byKey.get(key);
      if (block === undefined) break;
      hits.push(block);
      hitKey = key;
    }
    // The hit blocks themselves may be the evictable ones this allocation would take.
    const reusable = hits.filter((b) => this.#evictable.has(b)).length;
    if (needed - hits.length > this.availableBlocks - reusable - (options.keep ?? 0)) return undefined;
    for (const b of hits) this.#retain(b);
    const blocks = [...hits];
    while (blocks.length < needed) blocks.push(this.#take());
    const cachedTokens = hits.length * this.blockSize;
    this.#hitTokens += cachedTokens;
    this.#lookupTokens += tokens.length;
    return { blocks, cachedTokens, tokens, committed: hits.length, lastKey: hitKey };
  }

  /**
   * Blocks for `length` tokens (new ones at the end as needed). False, with nothing changed, when
   * too few are available: the caller preempts a sequence.
   */
  reserve(seq: SequenceBlocks, length: number): boolean {
    const needed = Math.ceil(length / this.blockSize) - seq.blocks.length;
    if (needed <= 0) return true;
    if (needed > this.availableBlocks) return false;
    for (let i = 0; i < needed; i++) seq.blocks.push(this.#take());
    return true;
  }

  /**
   * Registers the sequence's full blocks up to `computed` tokens in the prefix cache, once their
   * keys and values are in the cache (enqueued before anything that could read them).
   */
  commit(seq: SequenceBlocks, computed: number): void {
    const full = Math.floor(Math.min(computed, seq.tokens.length) / this.blockSize);
    // each block's key chains from the last committed one: a decode step hashes at most one block
    for (let b = seq.committed; b < full; b++) {
      const key = chainKey(seq.lastKey, seq.tokens, b, this.blockSize);
      const block = seq.blocks[b]!;
      if (!this.#byKey.has(key)) {
        this.#byKey.set(key, block);
        this.#blocks[block]!.key = key;
      }
      seq.lastKey = key;
      seq.committed = b + 1;
    }
  }

  /** Releases the sequence's blocks (cached ones stay reusable until evicted). */
  free(seq: SequenceBlocks): void {
    for (const b of seq.blocks) {
      const block = this.#blocks[b]!;
      block.refs -= 1;
      if (block.refs > 0) continue;
      if (block.key !== undefined) this.#evictable.set(b, true);
      else this.#free.push(b);
    }
    seq.blocks.length = 0;
  }

  #retain(b: number): void {
    this.#blocks[b]!.refs += 1;
    this.#evictable.delete(b);
  }

  /** A fresh block: a never-used or released one, else the least recently released cached one. */
  #take(): number {
    let b = this.#free.pop();
    if (b === undefined) {
      b = this.#evictable.keys().next().value as number;
      this.#evictable.delete(b);
      const block = this.#blocks[b]!;
      if (block.key !== undefined && this.#byKey.get(block.key) === b) this.#byKey.delete(block.key);
      block.key = undefined;
    }
    this.#blocks[b]!.refs = 1;
    return b;
  }
}

/**
 * The prefix-cache key of block b: a digest of the previous block's key and this block's tokens,
 * so it stands for every token up to the block's end in constant size.
 */
function chainKey(previous: string, tokens: ArrayLike<number>, b: number, blockSize: number): string {
  const hash = createHash('sha256').update(previous);
  hash.update(Int32Array.from({ length: blockSize }, (_, i) => tokens[b * blockSize + i]!));
  return hash.digest('base64');
}
