import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type Backend,
  type BackendProvider,
  type ResolvePreferences,
  registerBackend,
  resolveBackend,
} from '@fastattention/core';

/** The backend packages the CLI knows, best first. Each exports a registry provider. */
const KNOWN = [
  { pkg: '@fastattention/cuda-volta', exportName: 'cudaProvider' },
  { pkg: '@fastattention/cpu', exportName: 'cpuProvider' },
  { pkg: '@fastattention/ascend', exportName: 'ascendProvider' },
] as const;

/** Extra backend packages from the environment, comma-separated (same as --backend-package). */
export const BACKEND_PACKAGES_ENV = 'FASTATTN_BACKEND_PACKAGES';

export interface Discovery {
  readonly pkg: string;
  /** The registered providers, or why the package could not supply one. */
  readonly providers?: readonly BackendProvider[];
  readonly reason?: string;
}

function isProvider(value: unknown): value is BackendProvider {
  const p = value as Partial<BackendProvider> | undefined;
  return typeof p?.name === 'string' && typeof p.priority === 'number' && typeof p.create === 'function';
}

/**
 * A third-party package or file, resolved from the current directory (where the user installed
 * it), not from the CLI's own location.
 */
function specifierOf(pkg: string): string {
  if (pkg.startsWith('.') || isAbsolute(pkg)) return pathToFileURL(resolve(pkg)).href;
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'noop.js')).resolve(pkg)).href;
  } catch {
    return pkg; // ESM-only exports: let import() resolve it (and report why not)
  }
}

async function load(pkg: string, pick: (mod: Record<string, unknown>) => unknown[]): Promise<Discovery> {
  try {
    const mod: Record<string, unknown> = await import(pkg);
    const providers = pick(mod).filter(isProvider);
    if (providers.length === 0) return { pkg, reason: `${pkg} exports no backend provider` };
    for (const p of providers) registerBackend(p);
    return { pkg, providers };
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason =
      code === 'ERR_MODULE_NOT_FOUND'
        ? 'package not installed'
        : `failed to load: ${(error as Error).message}`;
    return { pkg, reason };
  }
}

/**
 * Imports every known backend package that is installed, plus any third-party ones named (a
 * package or file exporting a `BackendProvider` as `provider`, `default` or `*Provider`), and
 * registers their providers with core's default registry. A package that is missing or fails to
 * import is reported, never fatal: the reference backend is always there.
 */
export async function discoverBackends(extra: readonly string[] = []): Promise<Discovery[]> {
  const fromEnv = (process.env[BACKEND_PACKAGES_ENV] ?? '').split(',').map((s) => s.trim());
  const thirdParty = [...new Set([...extra, ...fromEnv].filter(Boolean))];
  return Promise.all([
    ...KNOWN.map(({ pkg, exportName }) => load(pkg, (mod) => [mod[exportName]])),
    ...thirdParty.map(async (pkg) => {
      const found = await load(specifierOf(pkg), (mod) =>
        Object.entries(mod)
          .filter(([name]) => name === 'provider' || name === 'default' || name.endsWith('Provider'))
          .map(([, value]) => value),
      );
      return { ...found, pkg };
    }),
  ]);
}

/** The flags every command that runs a backend takes. */
export interface BackendFlags {
  /** Use this backend alone (`--backend`); default: the best available. */
  readonly backend?: string;
  /** Worker threads, for backends that take them (`--threads`). */
  readonly threads?: number;
  readonly backendPackage?: string[];
}

/** Discovers the backend packages, then creates the backend the flags ask for. */
export async function backendFor(
  o: BackendFlags,
  onFallback?: ResolvePreferences['onFallback'],
): Promise<Backend> {
  await discoverBackends(o.backendPackage ?? []);
  return resolveBackend({
    ...(o.backend ? { prefer: [o.backend], only: true } : {}),
    options: o.threads ? { threads: o.threads } : {},
    ...(onFallback !== undefined && { onFallback }),
  });
}
