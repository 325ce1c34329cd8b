import { defineProject } from 'vitest/config';

// One test file at a time: each kernel call already uses every core, and the event-loop tests
// must not measure another file's kernels competing for the same two cores.
export default defineProject({
  test: {
    name: 'cpu',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
