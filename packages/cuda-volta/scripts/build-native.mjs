// Builds the addon (plain C++: the CUDA driver is dlopen'd) and the kernel fatbins with cmake-js.
// Never fails: without cmake, a compiler or nvcc it warns and exits 0, and createBackend() later
// says what is missing (build/native-build.json, build/native-build-error.txt).
//
// Which kernels: a machine without a GPU compiles none unless asked; with a GPU, the path each GPU
// present runs (found with nvidia-smi, or the driver), plus every path for each architecture in
// FASTATTN_CUDA_ARCHS (e.g. 80,90; `all` = every architecture this nvcc builds, for packaging).
// With CI set, GPUs are not looked for: only FASTATTN_CUDA_ARCHS counts (CI stays fast).
// FASTATTN_SKIP_NATIVE=1 skips the whole native build.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { detectGpus, findNvcc, planArchs, requestedArchs, root, tag, writeStatus } from './native-tools.mjs';

const errorFile = join(root, 'build', 'native-build-error.txt');
const status = {
  addon: false,
  nvcc: null,
  detected: [],
  detectedVia: '',
  requested: [],
  archs: {},
  notes: [],
};

function giveUp(reason) {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(errorFile, `${reason}\n`);
  writeStatus({ ...status, reason });
  console.warn(`${tag}: native addon not built: ${reason}`);
  console.warn(
    `${tag}: the package still imports; createBackend() will reject (UNAVAILABLE) with this reason.`,
  );
  process.exit(0);
}

if (process.env.FASTATTN_SKIP_NATIVE === '1') giveUp('FASTATTN_SKIP_NATIVE=1 was set at build time');

const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
if (cmake.error || cmake.status !== 0) {
  giveUp(
    'cmake was not found on PATH (install CMake >= 3.18, e.g. `apt-get install cmake` or `pip install cmake`)',
  );
}
const cmakeVersion = /version (\d+)\.(\d+)/.exec(cmake.stdout);
if (cmakeVersion && Number(cmakeVersion[1]) * 100 + Number(cmakeVersion[2]) < 318) {
  giveUp(`cmake ${cmakeVersion[1]}.${cmakeVersion[2]} is too old (CMake >= 3.18 is needed)`);
}
if (process.platform !== 'win32') {
  const candidates = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean);
  const found = candidates.some((cxx) => {
    const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
    return !probe.error && probe.status === 0;
  });
  if (!found) {
    giveUp(
      `no C++17 compiler was found (tried ${candidates.join(', ')}; install g++ or clang++, or set CXX)`,
    );
  }
}
let cmakeJs;
try {
  cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
} catch {
  giveUp('the cmake-js package is not installed (it is a dependency of @fastattention/cuda-volta)');
}
try {
  createRequire(import.meta.url).resolve('@fastattention/native-support');
} catch {
  giveUp(
    'the @fastattention/native-support package is not installed (it is a dependency of @fastattention/cuda-volta)',
  );
}

const nvcc = findNvcc();
status.nvcc = nvcc && `${nvcc.major}.${nvcc.minor}`;
try {
  status.requested = requestedArchs(nvcc);
} catch (error) {
  giveUp(error.message);
}
if (!process.env.CI) {
  const gpus = detectGpus();
  status.detected = gpus.archs;
  status.detectedVia = gpus.via;
} else {
  status.detectedVia = 'not looked for (CI is set)';
}

function plan() {
  const { archs, dropped } = planArchs(status.detected, status.requested, nvcc);
  status.archs = nvcc ? archs : {};
  status.notes = dropped.map((d) => `not compiled: ${d}`);
  const wanted = Object.values(archs).some((list) => list.length > 0);
  if (wanted && !nvcc) {
    status.notes.push(
      'nvcc was not found (PATH, $CUDA_PATH, $CUDA_HOME, /usr/local/cuda): install the CUDA toolkit 12.x or 13.x',
    );
  }
  if (!wanted) {
    status.notes.push(
      status.detected.length === 0
        ? 'no GPU was found at build time and FASTATTN_CUDA_ARCHS was not set, so no kernels were compiled'
        : 'no kernels were compiled',
    );
  }
}

const jobs = String(availableParallelism());
function cmakeJsRun(command, extra = []) {
  return spawnSync(
    process.execPath,
    [cmakeJs, command, '--log-level', 'warn', '--parallel', jobs, ...extra],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
    },
  );
}

function build() {
  const defines = [`--CDFASTATTN_NVCC=${nvcc?.path ?? ''}`];
  // Every path every time: a value left out would keep the one cached by an earlier configure.
  for (const path of ['volta', 'turing', 'ampere', 'hopper', 'common']) {
    defines.push(`--CDFASTATTN_ARCHS_${path}=${(status.archs[path] ?? []).join(',')}`);
  }
  // configure every time: cmake-js `build` alone keeps the cached architecture lists.
  const configure = cmakeJsRun('configure', defines);
  if (configure.error || configure.status !== 0) return configure;
  return cmakeJsRun('build');
}

rmSync(errorFile, { force: true });
const started = Date.now();
plan();
const summary = () =>
  Object.entries(status.archs)
    .filter(([, list]) => list.length > 0)
    .map(([path, list]) => `${path} sm_${list.join('/')}`)
    .join(', ') || 'none';
console.log(
  `${tag}: GPUs here: ${status.detected.map((s) => `sm_${s}`).join(', ') || 'none'} (${status.detectedVia}); ` +
    `FASTATTN_CUDA_ARCHS: ${process.env.FASTATTN_CUDA_ARCHS || 'unset'}; kernels: ${summary()}`,
);
let result = build();
if (!result.error && result.status === 0 && status.detected.length === 0 && !process.env.CI) {
  // No nvidia-smi: the addon just built asks the driver (a GPU with a driver but no nvidia-smi).
  const again = detectGpus();
  if (again.archs.length > 0) {
    status.detected = again.archs;
    status.detectedVia = again.via;
    plan();
    console.log(`${tag}: the driver reports sm_${again.archs.join(', sm_')}; kernels: ${summary()}`);
    result = build();
  }
}
if (result.error || result.status !== 0) {
  giveUp(
    `cmake-js failed (${result.error?.message ?? `exit code ${result.status}`}); see the build log above`,
  );
}
status.addon = true;
writeStatus(status);
for (const note of status.notes) console.log(`${tag}: ${note}`);
console.log(`${tag}: native build done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
