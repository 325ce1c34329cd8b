import { defineConfig } from 'vitest/config';

// One vitest project per package; native packages run in forked processes (pool: 'forks')
// so that a native crash cannot take the runner down with it.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'tools/bench', 'tools/scripts', 'tools/install-test'],
  },
});
