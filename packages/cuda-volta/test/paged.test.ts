// Paged KV on every path (the default one and the forced older ones) and head dim: prefill tiles
// (seqQ > 16) and split-KV decode, every power-of-two block size from 4 to 256 (below, at and above
// the k-tile; 4 and 8: below and at the 8-row swizzle pattern of the hopper copy engine), rows
// sharing blocks (a short row's last shared block holds another row's keys past its length),
// NaN in every unused slot and spare block, garbage table entries past each row.
import type { MaskSpec } from '@fastattention/core';
import { compareToReference, randomPagedCase, randomSeed, rng } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import type { CudaBackend } from '../src/index.js';
import { TOL, tryBackend } from './helpers.js';

const { backend } = await tryBackend();
const seed = randomSeed();
const defaultPath = backend?.info.devices[0]?.details?.path;
const paths = [undefined, ...(['ampere', 'turing', 'volta'] as const).filter((p) => p !== defaultPath)];

const MASKS: MaskSpec[] = [{ kind: 'causal' }, { kind: 'none' }, { kind: 'window', left: 40, right: 3 }];
const SHAPES = [
  { batch: 3, seqQ: 70, seqK: 300, headsQ: 4, headsKV: 2 }, // chunked prefill against a longer cache
  { batch: 2, seqQ: 1, seqK: 2000, headsQ: 8, headsKV: 2 }, // decode, split-KV
];

async function check(b: CudaBackend, label: string): Promise<void> {
  const rand = rng(seed);
  // Every mask at hd 128; at the other head dims the mask and dtype rotate with the block size.
  for (const headDim of [64, 80, 96, 128, 256])
    for (const shape of SHAPES)
      for (const [i, blockSize] of [4, 8, 16, 32, 64, 128, 256].entries())
        for (const mask of headDim === 128 ? MASKS : [MASKS[i % MASKS.length]!]) {
          const dtype = i % 2 === 1 ? 'bf16' : 'f16';
          const { paged } = randomPagedCase(
            rand,
            dtype,
            { ...shape, headDim },
            { blockSize, mask, sharedBlocks: 2 },
          );
          const { out, lse } = await b.attention(paged);
          const err = compareToReference(paged, out, lse);
          const what = `${label} hd ${headDim} ${JSON.stringify(shape)} block ${blockSize} ${mask.kind} ${dtype}`;
          expect(err.bad, `${what}: NaN/Inf where the reference has none`).toBe(0);
          expect(err.out, what).toBeLessThan(TOL[dtype]);
          expect(err.lse, what).toBeLessThan(TOL.lse);
        }
}

describe.skipIf(!backend)(`cuda paged KV (seed ${seed})`, () => {
  for (const path of paths) {
    it(`${path ?? `default (${defaultPath})`} path matches the float64 reference`, async () => {
      const b = path ? (await tryBackend({ path })).backend : backend;
      if (!b) return;
      try {
        await check(b, path ?? String(defaultPath));
      } finally {
        if (path) await b.dispose();
      }
    }, 240_000);
  }
});
