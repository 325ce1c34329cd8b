import { describeConformance } from '@fastattention/core/testing/vitest';
import { it } from 'vitest';
import { cpuProvider } from '../src/index.js';
import { loadAddon } from '../src/native.js';

// The whole backend contract in one call, as a plugin author would run it. (The package's own
// promise of event-loop gaps under 20 ms is checked in api.test.ts.)
const addon = loadAddon();
if (addon.ok) describeConformance(cpuProvider);
else it.skip(`conformance: the cpu addon is unavailable (${addon.reason})`, () => {});
