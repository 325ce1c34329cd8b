// Builds the native addon with cmake-js. A missing toolchain or a failed build is a warning, not
// an error: the package still installs and imports, and createBackend() then rejects with code
// UNAVAILABLE and this reason (written to build/native-build-error.txt).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const errorFile = join(root, 'build', 'native-build-error.txt');

function giveUp(reason) {
  mkdirSync(dirname(errorFile), { recursive: true });
  writeFileSync(errorFile, `${reason}\n`);
  console.warn(`@fastattention/cpu: native addon not built: ${reason}`);
  console.warn(
    '@fastattention/cpu: the package still works as a library; createBackend() will reject (UNAVAILABLE).',
  );
  process.exit(0);
}

if (process.env.FASTATTN_CPU_SKIP_NATIVE === '1') giveUp('FASTATTN_CPU_SKIP_NATIVE=1 was set at build time');

const probe = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0)
  giveUp('cmake was not found on PATH (install CMake >= 3.15 and a C++17 compiler)');

let cmakeJs;
try {
  cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
} catch {
  giveUp('the cmake-js package is not installed');
}

rmSync(errorFile, { force: true });
const jobs = String(Math.max(1, Math.min(cpus().length, 4)));
// "binary": {"napi_versions": [8]} in package.json makes cmake-js use the node-api-headers
// package instead of downloading Node's headers: the build works offline.
const result = spawnSync(
  process.execPath,
  [cmakeJs, 'compile', '--directory', root, '--config', 'Release', '--parallel', jobs],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (result.error || result.status !== 0) {
  giveUp(
    `cmake-js failed (${result.error?.message ?? `exit code ${result.status}`}); see the build log above`,
  );
}
if (!existsSync(join(root, 'build', 'Release', 'fastattn_cpu.node'))) {
  giveUp('the build finished but build/Release/fastattn_cpu.node is missing');
}
