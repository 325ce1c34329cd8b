/**
 * The backend `loadModel` runs on when it is given none: the best of the backend packages installed
 * beside the runtime (cuda-volta, then cpu), chosen through core's registry; core's float64
 * reference backend when neither is installed or can run here. The packages are optional: the
 * runtime imports them only to find their providers, and depends on none of them.
 */
import { type Backend, type BackendProvider, registerBackend, resolveBackend } from '@fastattention/core';

/** Each package and the name of its registry provider, best first. */
const PACKAGES: readonly (readonly [string, string])[] = [
  ['@fastattention/cuda-volta', 'cudaProvider'],
  ['@fastattention/cpu', 'cpuProvider'],
];

let registered: Promise<void> | undefined;

/** Registers the installed backend packages' providers (once), then creates the best usable backend. */
export async function defaultBackend(): Promise<Backend> {
  registered ??= Promise.all(
    PACKAGES.map(async ([pkg, name]) => {
      try {
        const mod = (await import(pkg)) as Record<string, BackendProvider | undefined>;
        const provider = mod[name];
        if (provider) registerBackend(provider);
      } catch {
        // not installed here: the next one, or the reference backend
      }
    }),
  ).then(() => undefined);
  await registered;
  // A GPU package installed on a machine without a GPU is the usual case, not worth a warning.
  return resolveBackend({ onFallback: false });
}
