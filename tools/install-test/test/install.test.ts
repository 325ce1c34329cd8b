// What a user gets from the registry: the packages packed as `changeset publish` packs them
// (`pnpm publish` = `pnpm pack`, which rewrites workspace: ranges and runs prepack), installed with
// npm into a fresh project outside the workspace (no workspace links), then the READMEs' snippets
// run as written. Needs the packages built (turbo runs their build first) and the npm registry
// for cmake-js and node-gyp-build (npm's cache is preferred).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PACKAGES = ['core', 'native-support', 'cpu', 'cuda-volta', 'ascend'] as const;
const linuxX64 = platform() === 'linux' && arch() === 'x64';

const work = mkdtempSync(join(tmpdir(), 'fastattn-install-'));
const packs = join(work, 'packs');
const app = join(work, 'app');
const tarballs: Record<string, string> = {};
let installLog = '';

/** The environment of a user's shell: nothing pnpm or turbo set for this test run. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|INIT_CWD$|TURBO_|VITEST|NODE_OPTIONS$)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** pnpm as this workspace pins it (root package.json's packageManager). */
function pnpmCommand(): [string, string[]] {
  const execPath = process.env.npm_execpath;
  if (execPath && /pnpm/.test(execPath)) return [process.execPath, [execPath]];
  const pinned = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).packageManager as string;
  return ['npx', ['--yes', pinned]];
}

async function sh(file: string, args: string[], cwd: string, env = userEnv()) {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, env, maxBuffer: 64 << 20 });
    return `${stdout}${stderr}`;
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${file} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
}

const npm = (args: string[], env?: NodeJS.ProcessEnv) =>
  sh('npm', [...args, '--no-audit', '--no-fund', '--foreground-scripts', '--prefer-offline'], app, env);

/** The package.json inside a tarball, as npm will read it. */
async function packedManifest(tarball: string): Promise<string> {
  return sh('tar', ['-xzOf', tarball, 'package/package.json'], work);
}

/** The first ```js block of a README's "## Usage" section, as a user would copy it. */
function usageSnippet(readme: string): string {
  const usage = readme.slice(readme.indexOf('## Usage'));
  const match = /```js\n([\s\S]*?)```/.exec(usage);
  if (!match) throw new Error('no js snippet under "## Usage"');
  return match[1]!;
}

const node = (file: string, env?: NodeJS.ProcessEnv) => sh(process.execPath, [file], app, env);

beforeAll(async () => {
  mkdirSync(packs, { recursive: true });
  mkdirSync(app, { recursive: true });
  const [pnpm, pnpmArgs] = pnpmCommand();
  // One at a time: each prepack copies its package's addon into prebuilds/ and checks that it loads.
  for (const name of PACKAGES) {
    const out = await sh(
      pnpm,
      [...pnpmArgs, 'pack', '--pack-destination', packs],
      join(repo, 'packages', name),
    );
    const file = [...out.matchAll(/^(\S+\.tgz)$/gm)].at(-1)?.[1];
    if (!file || !existsSync(file)) throw new Error(`pnpm pack printed no tarball for ${name}:\n${out}`);
    tarballs[name] = file;
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // `CI` stays as it is: the cuda-volta install script then does not look for GPUs either way here.
  installLog = await npm(['install', ...PACKAGES.map((name) => tarballs[name]!)]);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('packed as changeset publish packs them', () => {
  it.each(PACKAGES)('%s: no workspace: range is left, and README.md and LICENSE are in', async (name) => {
    const manifest = await packedManifest(tarballs[name]!);
    expect(manifest).not.toContain('workspace:');
    const files = await sh('tar', ['-tzf', tarballs[name]!], work);
    expect(files).toMatch(/^package\/README\.md$/m);
    expect(files).toMatch(/^package\/LICENSE$/m);
  });

  it('backends declare the core they share registry and errors with as a peer', async () => {
    const core = JSON.parse(await packedManifest(tarballs.core!)).version as string;
    for (const name of ['cpu', 'cuda-volta', 'ascend']) {
      const manifest = JSON.parse(await packedManifest(tarballs[name]!));
      const workspace = JSON.parse(readFileSync(join(repo, 'packages', name, 'package.json'), 'utf8'));
      const range = workspace.peerDependencies['@fastattention/core'].replace(/^workspace:/, '');
      expect(manifest.peerDependencies['@fastattention/core']).toBe(range);
      expect(manifest.dependencies?.['@fastattention/core']).toBeUndefined();
    }
    expect(core).toMatch(/^0\./); // the ranges say >=0.1.0 <1.0.0: revisit them at 1.0
    expect(installLog).not.toMatch(/ERESOLVE|conflicting peer/i);
  });

  it('cpu and cuda-volta depend on the native-support headers their addons build with', async () => {
    const support = JSON.parse(await packedManifest(tarballs['native-support']!));
    expect(await sh('tar', ['-tzf', tarballs['native-support']!], work)).toMatch(
      /^package\/include\/fastattention\/napi_error\.h$/m,
    );
    for (const name of ['cpu', 'cuda-volta']) {
      const manifest = JSON.parse(await packedManifest(tarballs[name]!));
      expect(manifest.dependencies['@fastattention/native-support']).toBe(`^${support.version}`);
    }
  });

  it.runIf(linuxX64)('cpu and cuda-volta carry their linux-x64 prebuilt addons', async () => {
    expect(await sh('tar', ['-tzf', tarballs.cpu!], work)).toMatch(
      /^package\/prebuilds\/linux-x64\/fastattn_cpu\.napi\.glibc\.node$/m,
    );
    expect(await sh('tar', ['-tzf', tarballs['cuda-volta']!], work)).toMatch(
      /^package\/prebuilds\/linux-x64\/fa_cuda\.napi\.glibc\.node$/m,
    );
  });
});

describe('npm install into a fresh project', () => {
  it.runIf(linuxX64)(
    "the cpu README's snippet runs on the native cpu backend from the prebuild",
    async () => {
      expect(installLog).toContain('@fastattention/cpu: using the prebuilt addon');
      const cpuDir = join(app, 'node_modules', '@fastattention', 'cpu');
      expect(existsSync(join(cpuDir, 'build'))).toBe(false); // nothing was compiled
      writeFileSync(join(app, 'cpu.mjs'), usageSnippet(readFileSync(join(cpuDir, 'README.md'), 'utf8')));
      const out = await node('cpu.mjs');
      expect(out).toMatch(/^backend: cpu$/m);
      expect(out).toMatch(/^out: 16384 f16 values; lse\[0\.\.3\]: -?\d/m);
    },
  );

  it.runIf(linuxX64)(
    "the repository README's snippet runs as written on the native cpu backend",
    async () => {
      const readme = readFileSync(join(repo, 'README.md'), 'utf8');
      const block = /<!-- readme-snippet:start -->\s*```js\n([\s\S]*?)```\s*<!-- readme-snippet:end -->/.exec(
        readme,
      );
      expect(block, 'README.md has no snippet between the readme-snippet markers').not.toBeNull();
      writeFileSync(join(app, 'readme.mjs'), block![1]!);
      const out = await node('readme.mjs');
      expect(out).toMatch(/^cpu: out 2097152 values, lse\[0\] = -?\d+\.\d{3}$/m);
      expect(out).not.toMatch(/FASTATTN_FALLBACK/); // nothing the user installed was skipped
    },
  );

  it("the cuda-volta README's snippet explains why cuda is not usable here and falls back", async () => {
    const dir = join(app, 'node_modules', '@fastattention', 'cuda-volta');
    writeFileSync(join(app, 'cuda.mjs'), usageSnippet(readFileSync(join(dir, 'README.md'), 'utf8')));
    const out = await node('cuda.mjs');
    // No GPU on the machines this suite runs on (a GPU machine resolves to cuda instead).
    if (!/^backend: cuda$/m.test(out)) {
      expect(out).toMatch(/^cuda: .*(no CUDA driver|no device|kernels not built for this GPU)/m);
      expect(out).toMatch(/^backend: cpu$/m);
    }
  });
});

describe('the ascend README', () => {
  it('snippet runs as written on the simulator', async () => {
    const dir = join(app, 'node_modules', '@fastattention', 'ascend');
    writeFileSync(join(app, 'ascend.mjs'), usageSnippet(readFileSync(join(dir, 'README.md'), 'utf8')));
    expect(await node('ascend.mjs')).toMatch(/^ascend-sim: out \d+ f16 values, lse \d+$/m);
  });
});

describe('no prebuild matches: the install script builds from source or says what is missing', () => {
  const cpuDir = () => join(app, 'node_modules', '@fastattention', 'cpu');
  const probe = `import { createBackend, loadAddon } from '@fastattention/cpu';
const loaded = loadAddon();
console.log(loaded.ok ? \`addon: \${loaded.path}\` : \`no addon: \${loaded.reason}\`);
try {
  const backend = await createBackend();
  console.log(\`backend: \${backend.name}\`);
  await backend.dispose();
} catch (error) {
  console.log(\`\${error.code}: \${error.message}\`);
}
`;

  beforeAll(() => {
    rmSync(join(cpuDir(), 'prebuilds'), { recursive: true, force: true });
    writeFileSync(join(app, 'probe.mjs'), probe);
  });

  it('without cmake: the install succeeds, says cmake is missing, and createBackend() repeats it', async () => {
    // A cmake that fails stands in for none: PATH keeps node, npm and the compiler.
    const fakeBin = join(work, 'no-cmake-bin');
    mkdirSync(fakeBin, { recursive: true });
    writeFileSync(join(fakeBin, 'cmake'), '#!/bin/sh\nexit 127\n');
    chmodSync(join(fakeBin, 'cmake'), 0o755);
    const env = userEnv({ PATH: `${fakeBin}${delimiter}${process.env.PATH ?? ''}` });
    const log = await npm(['rebuild', '@fastattention/cpu'], env);
    expect(log).toMatch(/no prebuilt addon loads here/);
    expect(log).toMatch(/native addon not built: cmake was not found on PATH/);
    const out = await node('probe.mjs');
    expect(out).toMatch(/^no addon: .*cmake was not found on PATH/m);
    expect(out).toMatch(/^UNAVAILABLE: .*cmake was not found on PATH/m);
  });

  it('with cmake and a compiler: the addon is built at install and the backend runs', async () => {
    const log = await npm(['rebuild', '@fastattention/cpu']);
    if (/native addon not built/.test(log)) {
      // A machine without the toolchain: the reason must name what is missing.
      expect(log).toMatch(/cmake|compiler|cmake-js/);
      return;
    }
    expect(log).toMatch(/native addon built in/);
    const out = await node('probe.mjs');
    expect(out).toMatch(/^addon: .*build[/\\]Release[/\\]fastattn_cpu\.node$/m);
    expect(out).toMatch(/^backend: cpu$/m);
  });
});
