import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'example', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 60_000 },
});
