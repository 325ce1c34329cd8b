import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'cuda', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 120_000 },
});
