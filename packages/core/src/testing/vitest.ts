/**
 * The conformance suite as vitest tests (`@fastattention/core/testing/vitest`): one call in a
 * backend package's test file checks everything the contract promises.
 *
 *   import { describeConformance } from '@fastattention/core/testing/vitest';
 *   describeConformance(myProvider);
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Backend } from '../backend.js';
import type { BackendProvider } from '../registry.js';
import { type ConformanceOptions, checkDispose, conformanceCases } from './conformance.js';

export interface DescribeConformanceOptions extends ConformanceOptions {
  /** Per-test timeout. Default 120 s (a loaded 2-core CI machine, slow backends). */
  readonly timeoutMs?: number;
}

export function describeConformance(
  provider: BackendProvider,
  options: DescribeConformanceOptions = {},
): void {
  const timeout = options.timeoutMs ?? 120_000;
  describe(`conformance: ${provider.name}`, () => {
    let backend: Backend | undefined;
    beforeAll(async () => {
      backend = await provider.create(options.createOptions);
    }, timeout);
    afterAll(async () => {
      await backend?.dispose();
    }, timeout);
    for (const c of conformanceCases(options)) {
      it(c.name, () => c.run(backend!), timeout);
    }
    const disposeCase = 'dispose: in-flight calls settle, later calls reject DISPOSED';
    if (!options.skip?.some((s) => disposeCase.startsWith(s))) {
      it(disposeCase, () => checkDispose(provider, options), timeout);
    }
  });
}
