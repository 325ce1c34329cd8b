/**
 * What the model commands share: the backend (the best available, or the one named), the model
 * loaded with the runtime behind a progress bar, and disposing of both.
 */
import { basename } from 'node:path';
import type { Backend } from '@fastattention/core';
import { loadModel, type Model } from '@fastattention/runtime';
import { type BackendFlags, backendFor } from '../backends.js';
import { createByteProgress } from '../progress.js';

export interface ModelOptions extends BackendFlags {
  readonly model: string;
}

export interface LoadedModel {
  readonly backend: Backend;
  readonly model: Model;
  dispose(): Promise<void>;
}

export async function loadForCommand(o: ModelOptions): Promise<LoadedModel> {
  const backend = await backendFor(o);
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
