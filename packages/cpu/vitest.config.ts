import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'cpu', include: ['test/**/*.test.ts'], pool: 'forks' },
});
