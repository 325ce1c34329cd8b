import { describe, expect, it } from 'vitest';
import { type Backend, createReferenceBackend, referenceProvider } from '../src/index.js';
import { runConformance } from '../src/testing/index.js';
import { describeConformance } from '../src/testing/vitest.js';

// The reference backend computes on the calling thread by design (it is the yardstick).
describeConformance(referenceProvider, { skip: ['event loop'] });

describe('the conformance suite', () => {
  it('reports a backend that breaks the contract, case by case', async () => {
    // A backend that drops NaN (as a max-reduction with fmaxf would), ignores its signal and never rejects late calls.
    const sloppy = {
      name: 'sloppy',
      priority: 0,
      create: async (): Promise<Backend> => {
        const ref = createReferenceBackend();
        return {
          ...ref,
          name: 'sloppy',
          async attention(input) {
            const { out, lse } = await ref.attention(input);
            return {
              out: out.map((x) => (Number.isNaN(x) ? 0 : x)) as typeof out,
              lse: lse.map((x) => (Number.isNaN(x) ? 0 : x)),
            };
          },
          dispose: async () => {},
        };
      },
    };
    const results = await runConformance(sloppy, {
      skip: ['event loop', 'numerics', 'invisible', 'keys hidden', 'paged KV'],
    });
    const failed = results.filter((r) => !r.ok).map((r) => r.name.split(':')[0]);
    expect(failed).toEqual(['NaN propagation', 'abort', 'dispose']);
    const passed = results.filter((r) => r.ok).map((r) => r.name.split(':')[0]);
    expect(passed).toEqual(['typed errors', 'concurrency']);
  });
});
