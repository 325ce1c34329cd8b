import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'ascend', include: ['test/**/*.test.ts'], pool: 'forks' },
});
