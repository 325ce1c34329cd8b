import { join } from 'node:path';
import { FastAttentionError, toFastAttentionError } from '@fastattention/core';
import { findKernels, moduleName, pathConfigs } from './kernels.js';
import {
  type KernelArchs,
  type KernelImage,
  loadAddon,
  type NativeAddon,
  type NativeConfig,
  type NativeContext,
  type NativeDevice,
  packageRoot,
  readManifest,
} from './native.js';
import type { CudaBackendOptions } from './options.js';
import { type ArchPath, candidatePaths } from './paths.js';

/** A device context ready to launch: its kernels loaded, the configurations they hold. */
export interface OpenDevice {
  readonly device: NativeDevice;
  readonly path: ArchPath;
  readonly context: NativeContext;
  /** The compiled configurations of the path (and its base) whose kernels the context holds. */
  readonly configs: NativeConfig[];
  readonly driverVersion: number;
  /** Whether this device and build support programmatic dependent launch (sm_90+ code). */
  readonly pdl: boolean;
  /** The same for the op kernels (kernels/common). */
  readonly opPdl: boolean;
}

const unavailable = (message: string, cause?: unknown): FastAttentionError =>
  new FastAttentionError('UNAVAILABLE', message, cause === undefined ? {} : { cause });

/**
 * Loads the addon, picks the device and the best architecture path whose kernels this build holds
 * for it, and loads those kernels into a new context. Rejects with UNAVAILABLE and the reason when
 * it cannot run here; with INVALID_INPUT for a device ordinal that does not exist; with UNSUPPORTED
 * for a forced path that does not exist or does not fit the device.
 */
export async function openDevice(options: CudaBackendOptions): Promise<OpenDevice> {
  const loaded = loadAddon();
  if ('reason' in loaded) throw unavailable(loaded.reason);
  const addon: NativeAddon = loaded.addon;
  let probe: ReturnType<NativeAddon['probe']>;
  try {
    probe = addon.probe();
  } catch (error) {
    throw toFastAttentionError(error, 'UNAVAILABLE');
  }
  if (probe.devices.length === 0) throw unavailable('no device (the CUDA driver sees no GPU)');
  const ordinal = options.device ?? 0;
  const device = probe.devices[ordinal];
  if (!Number.isInteger(ordinal) || !device) {
    throw new FastAttentionError(
      'INVALID_INPUT',
      `device: ${ordinal} is not one of the ${probe.devices.length} devices`,
      {
        field: 'device',
      },
    );
  }
  const sm = device.major * 10 + device.minor;
  const kernelDir = options.kernelDir ?? join(packageRoot, 'build', 'kernels');
  const manifest = readManifest(kernelDir);
  // The best path whose kernels (and its base's) this build holds for this device.
  const reasons: string[] = [];
  let chosen: { path: ArchPath; images: KernelImage[] } | undefined;
  for (const path of candidatePaths(sm, options.path)) {
    const found = findKernels(kernelDir, manifest, path, sm);
    if ('reason' in found) reasons.push(found.reason);
    else {
      chosen = { path, images: found.images };
      break;
    }
  }
  if (!chosen) throw unavailable([...new Set(reasons)].join('; '));
  const { path, images } = chosen;
  let context: NativeContext;
  try {
    context = new addon.Context(ordinal);
  } catch (error) {
    throw toFastAttentionError(error, 'UNAVAILABLE');
  }
  try {
    await context.loadModules(images);
  } catch (error) {
    context.dispose();
    throw toFastAttentionError(error, 'UNAVAILABLE');
  }
  const configs = pathConfigs(addon, path, (c) => context.hasFunction(moduleName(c), c.kernels.f16));
  if (configs.length === 0) {
    context.dispose();
    throw unavailable(`kernels not built (the ${path.name} fatbins hold none of the configured kernels)`);
  }
  // PDL needs sm_90+ and the sm_90+ code of the kernels (which has the wait): machine code for
  // this device, or PTX of compute_90 or newer (an older PTX JIT-compiled here has no wait).
  const hasWait = (archs: KernelArchs | undefined) =>
    sm >= 90 && !!archs && (archs.sm.includes(sm) || archs.ptx >= 90);
  const pdl = hasWait(manifest?.paths.ampere);
  const opPdl = hasWait(manifest?.common);
  return { device, path, context, configs, driverVersion: probe.driverVersion, pdl, opPdl };
}
