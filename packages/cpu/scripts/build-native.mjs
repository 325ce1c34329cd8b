// Builds the native addon from source with cmake-js into build/Release/fastattn_cpu.node: the
// workspace's `build` task, and the install script where no prebuilt addon fits this machine.
// A missing toolchain or a failed build is a warning, not an error: the package still installs and
// imports, and createBackend() then rejects with code UNAVAILABLE and this reason (written to
// build/native-build-error.txt, which the loader reads).
// Environment: FASTATTN_SKIP_NATIVE=1 (every native package) or FASTATTN_CPU_SKIP_NATIVE=1 skips it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const errorFile = join(root, 'build', 'native-build-error.txt');
const tag = '@fastattention/cpu';

function giveUp(reason) {
  mkdirSync(dirname(errorFile), { recursive: true });
  writeFileSync(errorFile, `${reason}\n`);
  console.warn(`${tag}: native addon not built: ${reason}`);
  console.warn(`${tag}: the package still works as a library; createBackend() will reject (UNAVAILABLE).`);
  process.exit(0);
}

for (const name of ['FASTATTN_SKIP_NATIVE', 'FASTATTN_CPU_SKIP_NATIVE']) {
  if (process.env[name] === '1') giveUp(`${name}=1 was set at build time`);
}

// Say exactly what is missing before cmake-js says it less clearly.
const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (cmake.error || cmake.status !== 0) {
  giveUp(
    'cmake was not found on PATH (install CMake >= 3.15, e.g. `apt-get install cmake` or `pip install cmake`, then rebuild)',
  );
}
const cmakeVersion = /version (\d+)\.(\d+)/.exec(cmake.stdout);
if (cmakeVersion && Number(cmakeVersion[1]) * 100 + Number(cmakeVersion[2]) < 315) {
  giveUp(`cmake ${cmakeVersion[1]}.${cmakeVersion[2]} is too old (CMake >= 3.15 is needed)`);
}
if (process.platform !== 'win32') {
  // CMake's own probe order: $CXX, then c++, g++, clang++ (Windows: Visual Studio, found by CMake).
  const candidates = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean);
  const found = candidates.some((cxx) => {
    const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
    return !probe.error && probe.status === 0;
  });
  if (!found) {
    giveUp(
      `no C++17 compiler was found (tried ${candidates.join(', ')}; install g++ >= 9 or clang++ >= 10, e.g. \`apt-get install g++\`, or set CXX)`,
    );
  }
}

let cmakeJs;
try {
  cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
} catch {
  giveUp('the cmake-js package is not installed (it is a dependency of @fastattention/cpu)');
}
try {
  createRequire(import.meta.url).resolve('@fastattention/native-support');
} catch {
  giveUp(
    'the @fastattention/native-support package is not installed (it is a dependency of @fastattention/cpu)',
  );
}

rmSync(errorFile, { force: true });
const jobs = String(Math.max(1, Math.min(cpus().length, 4)));
const started = Date.now();
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
console.log(`${tag}: native addon built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
