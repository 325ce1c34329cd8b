// The prebuilt addon shipped in the package: prebuilds/<platform>-<arch>/fastattn_cpu.napi[.<libc>].node,
// named as node-gyp-build (the loader, src/native.ts) looks it up. Used by install.mjs and prepack.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const tag = '@fastattention/cpu';

/** The prebuild file name for this machine; glibc vs musl as node-gyp-build tells them apart. */
export function prebuildPath() {
  const libc = process.platform === 'linux' ? (existsSync('/etc/alpine-release') ? '.musl' : '.glibc') : '';
  return join(root, 'prebuilds', `${process.platform}-${process.arch}`, `fastattn_cpu.napi${libc}.node`);
}

/**
 * Loads the prebuilt addon the way the package will (node-gyp-build, prebuilds only) in a child
 * process, so a binary that cannot load here (older glibc, another libc) cannot hurt this one.
 * Returns { ok: true, file, kernels } or { ok: false, reason }.
 */
export function probePrebuild() {
  let loader;
  try {
    loader = createRequire(import.meta.url).resolve('node-gyp-build');
  } catch {
    return { ok: false, reason: 'the node-gyp-build package is not installed' };
  }
  const script = `const f = require(${JSON.stringify(loader)}).resolve(${JSON.stringify(root)});
const a = require(f);
process.stdout.write(JSON.stringify({ file: f, kernels: a.kernels() }));`;
  const run = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, PREBUILDS_ONLY: '1' },
    timeout: 60_000,
  });
  if (run.status === 0) {
    try {
      return { ok: true, ...JSON.parse(run.stdout) };
    } catch {
      // fall through: unreadable output counts as a failed probe
    }
  }
  const lines = `${run.stderr ?? ''}${run.error?.message ?? ''}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(Error|No native build)|error:|not found/i.test(l));
  return { ok: false, reason: lines[0] ?? `the probe exited with ${run.status ?? run.signal}` };
}
