import { describeConformance } from '@fastattention/core/testing/vitest';
import { ascendProvider } from '../src/index.js';

// The whole backend contract in one call, as a plugin author would run it.
describeConformance(ascendProvider);
