import { type BackendProvider, registerBackend } from '@fastattention/core';

/** The backend packages the CLI knows, best first. Each exports a registry provider. */
const KNOWN = [
  { pkg: '@fastattention/cuda-volta', exportName: 'cudaProvider' },
  { pkg: '@fastattention/cpu', exportName: 'cpuProvider' },
  { pkg: '@fastattention/ascend', exportName: 'ascendProvider' },
] as const;

export interface Discovery {
  readonly pkg: string;
  /** The registered provider, or why the package could not supply one. */
  readonly provider?: BackendProvider;
  readonly reason?: string;
}

function isProvider(value: unknown): value is BackendProvider {
  const p = value as Partial<BackendProvider> | undefined;
  return typeof p?.name === 'string' && typeof p.priority === 'number' && typeof p.create === 'function';
}

/**
 * Imports every known backend package that is installed and registers its provider with core's
 * default registry. A package that is missing or fails to import is reported, never fatal:
 * the reference backend is always there.
 */
export async function discoverBackends(): Promise<Discovery[]> {
  return Promise.all(
    KNOWN.map(async ({ pkg, exportName }): Promise<Discovery> => {
      try {
        const mod: Record<string, unknown> = await import(pkg);
        const provider = mod[exportName];
        if (!isProvider(provider)) return { pkg, reason: `${pkg} does not export ${exportName}` };
        registerBackend(provider);
        return { pkg, provider };
      } catch (error) {
        const code = (error as { code?: string }).code;
        const reason =
          code === 'ERR_MODULE_NOT_FOUND'
            ? 'package not installed'
            : `failed to load: ${(error as Error).message}`;
        return { pkg, reason };
      }
    }),
  );
}
