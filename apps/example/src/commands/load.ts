/**
 * What the model commands share: the backend (the best available, or the one named), the model
 * loaded with the runtime behind a progress line, and disposing of both.
 */
import { basename } from 'node:path';
import { type Backend, resolveBackend } from '@fastattention/core';
import { loadModel, type Model } from '@fastattention/runtime';
import { discoverBackends } from '../backends.js';
import { formatBytes } from '../format.js';
import { createProgress } from '../progress.js';

export interface ModelOptions {
  readonly model: string;
  readonly backend?: string;
  readonly threads?: number;
  readonly backendPackage?: string[];
}

export interface LoadedModel {
  readonly backend: Backend;
  readonly model: Model;
  dispose(): Promise<void>;
}

export async function loadForCommand(o: ModelOptions): Promise<LoadedModel> {
  await discoverBackends(o.backendPackage ?? []);
  const backend = await resolveBackend({
    ...(o.backend ? { prefer: [o.backend], only: true } : {}),
    options: o.threads ? { threads: o.threads } : {},
  });
  const progress = createProgress();
  let shown = -5;
  let model: Model;
  try {
    model = await loadModel(o.model, {
      backend,
      onProgress: ({ loadedBytes, totalBytes }) => {
        // every 5%: a log gets a few dozen lines, not one per tensor
        const percent = totalBytes > 0 ? Math.floor((100 * loadedBytes) / totalBytes) : 100;
        if (percent < shown + 5 && percent < 100) return;
        shown = percent;
        const sizes = `${formatBytes(loadedBytes)} of ${formatBytes(totalBytes)}`;
        progress.step(`loading ${basename(o.model)}: ${percent}% (${sizes})`);
      },
    });
  } catch (error) {
    await backend.dispose();
    throw error;
  } finally {
    progress.done();
  }
  return {
    backend,
    model,
    async dispose() {
      await model.dispose();
      await backend.dispose();
    },
  };
}
