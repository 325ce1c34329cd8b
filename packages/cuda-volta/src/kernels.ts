import {
  type KernelImage,
  type KernelManifest,
  kernelsNotBuilt,
  type NativeAddon,
  type NativeConfig,
  readKernelImages,
} from './native.js';
import type { ArchPath } from './paths.js';

/** The fatbin (module) holding a configuration's kernels: one per head dim (kernels/<path>/fwd_hd<D>.cu). */
export function moduleName(config: NativeConfig): string {
  return `${config.path}/fwd_hd${config.headDim}`;
}

/**
 * A path's configurations whose kernels were built: its own, then its base's. A base configuration
 * of a role and head dim the path has its own kernel for becomes '<role>_alt': never planned, still
 * timeable by name.
 */
export function pathConfigs(
  addon: NativeAddon,
  path: ArchPath,
  built: (c: NativeConfig) => boolean,
): NativeConfig[] {
  const own = addon.configs(path.name).filter(built);
  if (!path.base) return own;
  const base = addon
    .configs(path.base)
    .filter(built)
    .map((c): NativeConfig => {
      if (c.role !== 'prefill' && c.role !== 'decode') return c;
      const overridden = own.some((o) => o.role === c.role && o.headDim === c.headDim);
      return overridden ? { ...c, role: `${c.role}_alt` } : c;
    });
  return [...own, ...base];
}

/** The fatbins of a path and its base in kernelDir, or why they cannot run on sm. */
export function findKernels(
  kernelDir: string,
  manifest: KernelManifest | undefined,
  path: ArchPath,
  sm: number,
): { images: KernelImage[] } | { reason: string } {
  const images: KernelImage[] = [];
  for (const name of [path.name, ...(path.base ? [path.base] : []), 'common']) {
    const found = readKernelImages(kernelDir, name);
    if (!found) {
      return {
        reason: kernelsNotBuilt(kernelDir, name, sm),
      };
    }
    const built = manifest?.paths[name];
    if (built && !built.sm.includes(sm) && sm < built.ptx) {
      return {
        reason: kernelsNotBuilt(kernelDir, name, sm, built),
      };
    }
    images.push(...found);
  }
  return { images };
}
