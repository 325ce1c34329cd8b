/**
 * What the throughput commands (bench, model-demo) share: prompts that the prefix cache cannot
 * answer, and the arrival time of each token of a fixed-length greedy generation.
 */
import type { Model } from '@fastattention/runtime';

/** Prompts of random-looking token ids, each different from every other from its first token on. */
export function freshPrompts(vocab: number): (length: number) => Int32Array {
  let draws = 0;
  return (length) => {
    const draw = draws++;
    return Int32Array.from({ length }, (_, i) =>
      i === 0 ? draw % vocab : (i * 7919 + draw * 104729) % vocab,
    );
  };
}

/**
 * Arrival times (ms after `start`) of each of `maxTokens` greedy tokens, end-of-sequence ignored:
 * the first one ends the prefill.
 */
export async function arrivalTimes(
  model: Model,
  tokens: Int32Array,
  maxTokens: number,
  start = performance.now(),
): Promise<number[]> {
  const times: number[] = [];
  for await (const _ of model.generate({ tokens, maxTokens, stopTokens: [], temperature: 0 })) {
    times.push(performance.now() - start);
  }
  return times;
}
