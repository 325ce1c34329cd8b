// `prepack` (pnpm pack, pnpm publish, changeset publish): puts the addon built by the workspace's
// build task (build/Release/fa_cuda.node) into prebuilds/<platform>-<arch>/ and checks that it
// loads through node-gyp-build. The addon has no CUDA dependency at link time (the driver is
// dlopen'd), so the one binary serves every GPU and machines without one. Kernels are not packed:
// they are compiled at install for the GPUs present (see README: the cost per architecture).
// `node scripts/prepack.mjs --clean` (postpack) removes prebuilds/ again.
// FASTATTN_SKIP_NATIVE=1 packs without a prebuild (the install script then builds from source).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { probeAddon, root, tag } from './native-tools.mjs';

rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);

function fail(message) {
  console.error(`${tag} prepack: ${message}`);
  process.exit(1);
}

if (!existsSync(join(root, 'dist', 'index.js'))) fail('dist/ is missing: run the build first (pnpm build)');
if (process.env.FASTATTN_SKIP_NATIVE === '1') {
  console.warn(`${tag} prepack: FASTATTN_SKIP_NATIVE=1: packing without a prebuilt addon`);
  process.exit(0);
}
const built = join(root, 'build', 'Release', 'fa_cuda.node');
if (!existsSync(built)) {
  spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
  if (!existsSync(built)) fail('the addon could not be built, so there is no prebuild to pack (see above)');
}
const libc = process.platform === 'linux' ? (existsSync('/etc/alpine-release') ? '.musl' : '.glibc') : '';
const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`, `fa_cuda.napi${libc}.node`);
mkdirSync(dirname(target), { recursive: true });
copyFileSync(built, target);
const probe = probeAddon(true);
if (!probe.ok) fail(`the prebuilt addon does not load: ${probe.reason}`);
console.log(`${tag} prepack: ${relative(root, target)}`);
