// The whole backend contract in one call, as a plugin author would run it. Needs a GPU (the
// provider cannot create a backend without one): elsewhere it skips and says why.
import { describeConformance } from '@fastattention/core/testing/vitest';
import { it } from 'vitest';
import { cudaProvider } from '../src/index.js';
import { tryBackend } from './helpers.js';

const { backend, reason } = await tryBackend();
await backend?.dispose();
if (backend) describeConformance(cudaProvider);
else it.skip(`conformance: no usable cuda backend here (${reason})`, () => {});
