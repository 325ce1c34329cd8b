// The package's `install` script, run by npm, pnpm and yarn after they install it. It never fails
// the install:
// - a prebuilt addon that loads on this machine (prebuilds/, linux-x64 glibc) is used as it is;
// - otherwise (another platform or libc, a glibc/libstdc++ too old for the prebuild, or
//   `npm install --build-from-source`) it builds from source with cmake-js (scripts/build-native.mjs),
//   and where that cannot happen it says exactly what is missing (cmake? a compiler?); createBackend()
//   then repeats that reason.
// In this repository's workspace checkout it does nothing: there `pnpm build` (turbo's build task)
// builds the addon, and `pnpm install` must stay fast.
// Environment: FASTATTN_SKIP_NATIVE=1 or FASTATTN_CPU_SKIP_NATIVE=1: no build from source.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { probePrebuild, root, tag } from './prebuild.mjs';

if (!realpathSync(root).split(sep).includes('node_modules')) {
  console.log(
    `${tag}: workspace checkout; the addon is built by the build task (pnpm build), not at install`,
  );
  process.exit(0);
}

const fromSource = ['true', '1'].includes(process.env.npm_config_build_from_source ?? '');
if (!fromSource) {
  const probe = probePrebuild();
  if (probe.ok) {
    console.log(`${tag}: using the prebuilt addon ${probe.file} (kernels: ${probe.kernels.join(', ')})`);
    process.exit(0);
  }
  console.log(`${tag}: no prebuilt addon loads here (${probe.reason}); building from source`);
} else {
  console.log(`${tag}: --build-from-source: building the addon from source`);
}
// build-native.mjs honours the skip switches itself (and records why for createBackend()).
const build = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) console.warn(`${tag}: the build script exited with ${build.status ?? build.signal}`);
process.exit(0);
