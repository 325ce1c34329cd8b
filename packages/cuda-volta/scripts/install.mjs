// The package's `install` script (npm, pnpm, yarn). It never fails the install:
// - the prebuilt addon (prebuilds/linux-x64) is used where it loads; it is plain C++ that dlopen's
//   the CUDA driver, so it runs on any glibc x86-64 Linux, GPU or not;
// - kernels are compiled here (nvcc, scripts/build-native.mjs) only for the GPUs present (nvidia-smi,
//   or the driver) and the architectures in FASTATTN_CUDA_ARCHS. A machine without a GPU compiles
//   none unless asked; createBackend() then says "kernels not built for this GPU; set
//   FASTATTN_CUDA_ARCHS=... and rebuild". Where nvcc, cmake or a compiler is missing, it says which.
// - no prebuild for this platform, one that does not load, or `npm install --build-from-source`:
//   the addon is built from source too.
// In this repository's workspace checkout it does nothing: `pnpm build` (turbo) builds there.
// Environment: FASTATTN_SKIP_NATIVE=1 (no build at all), FASTATTN_CUDA_ARCHS=80,90 (or `all`).
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { detectGpus, findNvcc, probeAddon, requestedArchs, root, tag, writeStatus } from './native-tools.mjs';

if (!realpathSync(root).split(sep).includes('node_modules')) {
  console.log(
    `${tag}: workspace checkout; the addon and kernels are built by the build task (pnpm build), not at install`,
  );
  process.exit(0);
}

const fromSource = ['true', '1'].includes(process.env.npm_config_build_from_source ?? '');
const prebuilt = fromSource ? { ok: false, reason: '--build-from-source' } : probeAddon(true);
let wantsKernels = false;
let detected = { archs: [], via: 'not looked for (CI is set)' };
let requested = [];
const nvcc = findNvcc();
try {
  requested = requestedArchs(nvcc);
} catch (error) {
  console.warn(`${tag}: ${error.message}`);
}
if (!process.env.CI) detected = detectGpus();
wantsKernels = detected.archs.length > 0 || requested.length > 0;

if (prebuilt.ok && !wantsKernels) {
  const note = 'no GPU was found at install and FASTATTN_CUDA_ARCHS was not set, so no kernels were compiled';
  writeStatus({
    addon: true,
    nvcc: nvcc && `${nvcc.major}.${nvcc.minor}`,
    detected: [],
    detectedVia: detected.via,
    requested,
    archs: {},
    notes: [note],
  });
  console.log(`${tag}: using the prebuilt addon ${prebuilt.file}; ${note}`);
  console.log(
    `${tag}: on a GPU machine: FASTATTN_CUDA_ARCHS=<sm, e.g. 90> npm rebuild @fastattention/cuda-volta`,
  );
  process.exit(0);
}
console.log(
  `${tag}: ${prebuilt.ok ? 'prebuilt addon loads' : `building the addon from source (${prebuilt.reason})`}; ` +
    `GPUs: ${detected.archs.map((s) => `sm_${s}`).join(', ') || 'none'}; building ${wantsKernels ? 'kernels' : 'the addon'}`,
);
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) console.warn(`${tag}: the build script exited with ${build.status ?? build.signal}`);
process.exit(0);
