import type { AttentionInput, AttentionOptions, AttentionOutput } from '../attention.js';
import type { Backend, BackendInfo } from '../backend.js';
import { DTYPES, type DType } from '../dtype.js';
import { throwIfAborted } from '../errors.js';
import { Lifetime } from '../lifetime.js';
import { MASK_KINDS } from '../mask/spec.js';
import { ALL_BLOCK_SIZES } from '../paged.js';
import type { BackendProvider } from '../registry.js';
import { validateAttentionInput } from '../validate.js';
import { exactAttention, toOutput } from './exact.js';
import { ReferenceExecutor } from './exec/executor.js';

const INFO: BackendInfo = {
  name: 'reference',
  devices: [{ name: 'float64 TypeScript (exact, slow)', kind: 'host' }],
  capabilities: {
    dtypes: DTYPES,
    headDims: { kind: 'any' },
    masks: MASK_KINDS,
    pagedKV: ALL_BLOCK_SIZES,
  },
};

/**
 * The float64 reference backend: exact attention straight from the definition, in plain
 * TypeScript. It runs on the calling thread; it is the yardstick, not a production path.
 */
export function createReferenceBackend(): Backend {
  const life = new Lifetime('the reference backend');
  const dispose = (): Promise<void> => life.dispose();
  return {
    name: INFO.name,
    info: INFO,
    attention<D extends DType>(
      input: AttentionInput<D>,
      options?: AttentionOptions,
    ): Promise<AttentionOutput<D>> {
      return life.run(async () => {
        const resolved = validateAttentionInput(input, INFO.capabilities);
        throwIfAborted(options?.signal);
        const output = toOutput(exactAttention(resolved), resolved.dtype);
        // float64 copies of q, k, v and out: O(S), never a score matrix
        const workspaceBytes = 8 * (2 * resolved.q.length + resolved.k.length + resolved.v.length);
        return { ...output, workspaceBytes };
      });
    },
    createExecutor: () => {
      life.check();
      return life.adopt(new ReferenceExecutor());
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** Registry entry of the reference backend: always available, lowest priority. */
export const referenceProvider: BackendProvider = {
  name: 'reference',
  priority: 0,
  description: 'float64 TypeScript, exact and slow; always available',
  create: async () => createReferenceBackend(),
};
