import { describe, expect, it } from 'vitest';
import { attentionFlops, median } from '../src/index.js';

const shape = { batch: 2, seqQ: 1024, seqK: 1024, headsQ: 4, headsKV: 2, headDim: 64 };

describe('attentionFlops', () => {
  it('counts 4·d per allowed pair: dense, causal (about half), decode, padding', () => {
    expect(attentionFlops(shape, { kind: 'none' })).toBe(4 * 64 * 4 * 2 * 1024 * 1024);
    expect(attentionFlops(shape, { kind: 'causal' })).toBe(4 * 64 * 4 * 2 * ((1024 * 1025) / 2));
    expect(attentionFlops({ ...shape, seqQ: 1 }, { kind: 'causal' })).toBe(4 * 64 * 4 * 2 * 1024);
    expect(attentionFlops(shape, { kind: 'none' }, [1024, 0])).toBe(4 * 64 * 4 * 1024 * 1024);
  });

  it('takes medians of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
