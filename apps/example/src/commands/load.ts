/**
 * What the model commands share: the backend (the best available, or the one named), the model
 * loaded with the runtime behind a progress bar, and disposing of both.
 */
import { basename } from 'node:path';
import { type Backend, resolveBackend } from '@fastattention/core';
import { loadModel, type Model } from '@fastattention/runtime';
import { discoverBackends } from '../backends.js';
import { createByteProgress } from '../progress.js';

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
  const progress = createByteProgress(`loading ${basename(o.model)}`);
  let model: Model;
  try {
    model = await loadModel(o.model, {
      backend,
      onProgress: ({ loadedBytes, totalBytes }) => progress.update(loadedBytes, totalBytes),
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
