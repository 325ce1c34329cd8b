// `prepack` (pnpm pack, pnpm publish, changeset publish): puts the addon built by the workspace's
// build task (build/Release, cmake-js) into prebuilds/<platform>-<arch>/ so that users on that
// platform install without a compiler, and checks that it loads through node-gyp-build.
// The release prebuild is packed on linux-x64 (glibc); CMakeLists.txt keeps it portable across
// x86-64 CPUs (no -march; the avx512/avx2/generic kernels are chosen at run time).
// `node scripts/prepack.mjs --clean` (postpack) removes prebuilds/ again.
// FASTATTN_SKIP_NATIVE=1 packs without a prebuild (the install script then builds from source).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { prebuildPath, probePrebuild, root, tag } from './prebuild.mjs';

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
const built = join(root, 'build', 'Release', 'fastattn_cpu.node');
if (!existsSync(built)) {
  spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
  if (!existsSync(built)) fail('the addon could not be built, so there is no prebuild to pack (see above)');
}
// A prebuild must run on any x86-64 CPU. The ISA kernels are compiled with -mavx2/-mavx512*, so an
// inline function or template they instantiate outside their own namespace (fastattn::isa_avx*)
// is a weak function the linker may pick for the portable code too (weak data is harmless). Refuse to pack such a build.
const objects = join(root, 'build', 'CMakeFiles', 'fastattn_cpu.dir', 'native', 'src', 'kernel');
for (const isa of ['avx2', 'avx512']) {
  const object = join(objects, `flash_fwd_${isa}.cpp.o`);
  if (!existsSync(object)) continue;
  const nm = spawnSync('nm', ['-C', '--defined-only', object], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (nm.error || nm.status !== 0) {
    console.warn(`${tag} prepack: nm is not available; the ${isa} kernel's weak symbols were not checked`);
    continue;
  }
  const leaked = nm.stdout
    .split('\n')
    .map((line) => /^\S*\s+(W)\s+(.*)$/.exec(line))
    .filter((m) => m && !m[2].includes(`isa_${isa}`))
    .map((m) => m[2]);
  if (leaked.length > 0) {
    fail(
      `the ${isa} kernel defines weak symbols outside its namespace (may run on CPUs without ${isa}): ${leaked.slice(0, 5).join('; ')}`,
    );
  }
}
const target = prebuildPath();
mkdirSync(dirname(target), { recursive: true });
copyFileSync(built, target);
const probe = probePrebuild();
if (!probe.ok) fail(`the prebuilt addon does not load: ${probe.reason}`);
console.log(`${tag} prepack: ${relative(root, target)} (kernels here: ${probe.kernels.join(', ')})`);
