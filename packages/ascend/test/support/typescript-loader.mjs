// Lets worker processes started by the tests run the package's TypeScript sources (the simulation
// worker, src/worker/entry.ts): vitest compiles the test process's own modules, but a worker is a
// fresh Node.js process that only sees Node's loader. Workers inherit the test process's execArgv,
// where vitest.config.ts puts `--import` of this file.
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
