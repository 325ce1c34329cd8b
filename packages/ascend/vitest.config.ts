import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';

// Simulation workers started by the tests run src/worker/entry.ts: give the test processes (and so
// their workers, which inherit execArgv) a loader for TypeScript sources.
const typescriptLoader = fileURLToPath(new URL('./test/support/typescript-loader.mjs', import.meta.url));

export default defineProject({
  test: {
    name: 'ascend',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    poolOptions: { forks: { execArgv: ['--import', typescriptLoader] } },
  },
});
