// Node.js module hooks: strip TypeScript types (typescript's transpileModule, no type check) and
// resolve the `./x.js` specifiers of our sources to `./x.ts` when only the source exists.
// Every test file starts workers, and loading the typescript package costs about a second per
// thread, so transpiled files are cached on disk by path, size and mtime: typescript is loaded
// only when a source changed.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(tmpdir(), 'fastattention-ascend-test-ts');

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    const fromSource = context.parentURL?.endsWith('.ts') && specifier.endsWith('.js');
    if (!fromSource || error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return next(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const path = fileURLToPath(url);
  const { size, mtimeMs } = await stat(path);
  const key = createHash('sha256').update(`${path}\0${size}\0${mtimeMs}`).digest('hex');
  const cached = join(CACHE, `${key}.js`);
  const source = await readFile(cached, 'utf8').catch(() => undefined);
  return { format: 'module', source: source ?? (await transpile(path, cached)), shortCircuit: true };
}

async function transpile(path, cached) {
  const { default: ts } = await import('typescript');
  const { outputText } = ts.transpileModule(await readFile(path, 'utf8'), {
    fileName: path,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
    },
  });
  // Written under a unique name, then renamed: concurrent workers never read half a file.
  await mkdir(CACHE, { recursive: true });
  const partial = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(partial, outputText);
  await rename(partial, cached);
  return outputText;
}
