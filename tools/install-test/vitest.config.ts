import { defineProject } from 'vitest/config';

// Packing the published packages, an npm install and one build of the cpu addon from source: about a minute
// on a quiet 2-core machine, several when CI runs every package at once.
export default defineProject({
  test: {
    name: 'install-test',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
