// Builds the addon and the kernel fatbins with cmake-js. Never fails the install: without cmake,
// a compiler or nvcc, it warns and exits 0, and createBackend() later says what is missing.
// Environment: FA_CUDA_ARCHS=90 builds only sm_90 (+ compute_90 PTX), which CI uses; FA_SKIP_NATIVE=1 skips.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.FA_SKIP_NATIVE === '1') {
  console.warn('[cuda-volta] FA_SKIP_NATIVE=1: native build skipped');
  process.exit(0);
}
if (process.env.CI && !process.env.FA_CUDA_ARCHS) process.env.FA_CUDA_ARCHS = '90';
const cmakeJs = join(root, 'node_modules', '.bin', 'cmake-js');
const started = Date.now();
const result = spawnSync(
  cmakeJs,
  ['build', '--log-level', 'warn', '--parallel', String(availableParallelism())],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: String(availableParallelism()) },
  },
);
if (result.status !== 0) {
  console.warn(
    `[cuda-volta] native build failed (${result.error?.message ?? `exit ${result.status}`}); ` +
      'the package installs without it and createBackend() will explain why it is unavailable',
  );
  process.exit(0);
}
console.log(`[cuda-volta] native build done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
