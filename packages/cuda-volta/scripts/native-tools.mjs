// What the build and install scripts share: finding nvcc and the GPUs of this machine, choosing the
// architectures each kernel path is compiled for, and the build status the backend reads to say
// why kernels are missing (build/native-build.json; src/native.ts kernelsNotBuilt()).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const tag = '@fastattention/cuda-volta';
export const statusFile = join(root, 'build', 'native-build.json');

/** nvcc on PATH, in $CUDA_PATH/$CUDA_HOME, or /usr/local/cuda: { path, major, minor } or null. */
export function findNvcc() {
  const candidates = ['nvcc'];
  for (const dir of [process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda']) {
    if (dir) candidates.push(join(dir, 'bin', process.platform === 'win32' ? 'nvcc.exe' : 'nvcc'));
  }
  for (const nvcc of candidates) {
    const run = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
    const version = /release (\d+)\.(\d+)/.exec(run.stdout ?? '');
    if (!run.error && run.status === 0 && version) {
      const which = nvcc === 'nvcc' ? spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }) : null;
      return {
        path: which?.stdout?.trim() || nvcc,
        major: Number(version[1]),
        minor: Number(version[2]),
      };
    }
  }
  return null;
}

/**
 * Compute capabilities (major * 10 + minor) of the GPUs here: nvidia-smi first, else the addon's
 * own driver probe (cuDeviceGetAttribute through dlopen'd libcuda) in a child process.
 */
export function detectGpus() {
  const smi = spawnSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (!smi.error && smi.status === 0) {
    const caps = smi.stdout
      .split('\n')
      .map((l) => /^(\d+)\.(\d+)/.exec(l.trim()))
      .filter(Boolean)
      .map((m) => Number(m[1]) * 10 + Number(m[2]));
    if (caps.length > 0) return { archs: [...new Set(caps)].sort((a, b) => a - b), via: 'nvidia-smi' };
  }
  const probe = probeAddon(false);
  if (probe.ok && probe.devices.length > 0) {
    const caps = probe.devices.map((d) => d.major * 10 + d.minor);
    return { archs: [...new Set(caps)].sort((a, b) => a - b), via: 'the CUDA driver' };
  }
  return {
    archs: [],
    via: smi.error ? 'nvidia-smi not found, no device through the driver' : 'no GPU listed',
  };
}

/**
 * Loads the addon as the package will (node-gyp-build: build/Release, else the prebuild; only the
 * prebuild with `prebuildsOnly`) in a child process, and asks the driver for its devices.
 * Returns { ok: true, file, devices } or { ok: false, reason }.
 */
export function probeAddon(prebuildsOnly) {
  let loader;
  try {
    loader = createRequire(import.meta.url).resolve('node-gyp-build');
  } catch {
    return { ok: false, reason: 'the node-gyp-build package is not installed' };
  }
  const script = `const f = require(${JSON.stringify(loader)}).resolve(${JSON.stringify(root)});
const a = require(f);
let devices = [];
try { devices = a.probe().devices.map((d) => ({ major: d.major, minor: d.minor })); } catch {}
process.stdout.write(JSON.stringify({ file: f, devices }));`;
  const env = { ...process.env };
  if (prebuildsOnly) env.PREBUILDS_ONLY = '1';
  else delete env.PREBUILDS_ONLY;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env, timeout: 60_000 });
  if (run.status === 0) {
    try {
      return { ok: true, ...JSON.parse(run.stdout) };
    } catch {
      // unreadable output: a failed probe
    }
  }
  const lines = `${run.stderr ?? ''}${run.error?.message ?? ''}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(Error|No native build)|error:|not found/i.test(l));
  return { ok: false, reason: lines[0] ?? `the probe exited with ${run.status ?? run.signal}` };
}

/** FASTATTN_CUDA_ARCHS ("80,90", "8.6", "sm_90", "all"), as numbers; `all` is the packaging list. */
export function requestedArchs(nvcc, value = process.env.FASTATTN_CUDA_ARCHS ?? '') {
  const items = value
    .split(/[\s,;]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const out = [];
  for (const item of items) {
    if (item === 'all') out.push(...allArchs(nvcc));
    else {
      const m = /^(?:sm_|compute_)?(\d)\.?(\d+)a?$/.exec(item);
      if (!m)
        throw new Error(
          `FASTATTN_CUDA_ARCHS: '${item}' is not an architecture (examples: 80,90 or 8.6 or all)`,
        );
      out.push(Number(m[1]) * 10 + Number(m[2]));
    }
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/**
 * `FASTATTN_CUDA_ARCHS=all`: every architecture this nvcc can build that a path runs on. CUDA 13
 * dropped sm_70 (Volta; scripts/cuda118/build.sh builds it with CUDA 11.8).
 */
export function allArchs(nvcc) {
  if (!nvcc) return [];
  const v = nvcc.major * 100 + nvcc.minor;
  if (v >= 1300) return [75, 80, 86, 89, 90, 100, 120];
  if (v >= 1208) return [70, 75, 80, 86, 89, 90, 100, 120];
  if (v >= 1108) return [70, 75, 80, 86, 89, 90];
  return [70, 75, 80, 86];
}

/** The kernel path a GPU runs by default (src/paths.ts): hopper on sm_90 (plus its ampere base). */
function defaultPaths(sm) {
  if (sm === 90) return ['hopper', 'ampere'];
  if (sm >= 80) return ['ampere'];
  if (sm >= 75) return ['turing'];
  if (sm >= 70) return ['volta'];
  return [];
}

/**
 * The architectures each path is compiled for. A GPU found here gets the path it runs by default
 * (and its base); an architecture in FASTATTN_CUDA_ARCHS gets every path that runs on it, so
 * `path: 'volta'` can be forced on a newer GPU for validation. The split-KV combine kernel
 * (`common`) serves all of them. Returns { archs: { path: number[] }, dropped: string[] }.
 */
export function planArchs(detected, requested, nvcc) {
  const archs = { volta: [], turing: [], ampere: [], hopper: [], common: [] };
  const dropped = [];
  const add = (path, sm) => {
    if (!archs[path].includes(sm)) archs[path].push(sm);
  };
  const buildable = (sm) => {
    if (sm < 70) {
      dropped.push(`sm_${sm} (older than Volta: no tensor-core path)`);
      return false;
    }
    if (sm < 75 && nvcc && nvcc.major >= 13) {
      dropped.push(
        `sm_${sm} (CUDA ${nvcc.major} cannot compile it: use CUDA <= 12, scripts/cuda118/build.sh)`,
      );
      return false;
    }
    return true;
  };
  for (const sm of detected) {
    if (!buildable(sm)) continue;
    for (const path of defaultPaths(sm)) add(path, sm);
    add('common', sm);
  }
  for (const sm of requested) {
    if (!buildable(sm)) continue;
    if (sm === 90) add('hopper', sm);
    if (sm >= 80) add('ampere', sm);
    if (sm >= 75) add('turing', sm);
    add('volta', sm);
    add('common', sm);
  }
  // The hopper path's wgmma code is sm_90a machine code (nvcc >= 12.0); it does not run elsewhere.
  if (nvcc && nvcc.major < 12) archs.hopper = [];
  for (const path of Object.keys(archs)) archs[path].sort((a, b) => a - b);
  return { archs, dropped: [...new Set(dropped)] };
}

export function writeStatus(status) {
  mkdirSync(dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ...status, at: new Date().toISOString() }, null, 2)}\n`);
}

export function readStatus() {
  try {
    return existsSync(statusFile) ? JSON.parse(readFileSync(statusFile, 'utf8')) : undefined;
  } catch {
    return undefined;
  }
}
