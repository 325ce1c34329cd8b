import { describeConformance } from '@fastattention/core/testing/vitest';
import { it } from 'vitest';
import { cpuProvider } from '../src/index.js';
import { loadAddon } from '../src/native.js';

// The whole backend contract in one call, as a plugin author would run it (20 ms event-loop
// allowance over the idle stall, as the package promises).
const addon = loadAddon();
if (addon.ok) describeConformance(cpuProvider, { maxEventLoopGapMs: 20 });
else it.skip(`conformance: the cpu addon is unavailable (${addon.reason})`, () => {});
