// What serve-load.mjs and its HTTP client share: random token-id prompts, and C workers each
// running R requests in turn, summarized as output tok/s and time-to-first-token percentiles.

/** A generator of prompts of `length` random ids below `vocab`, from `seed`. */
export function promptSource(length, vocab, seed) {
  let state = seed;
  return () =>
    Array.from({ length }, () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % vocab;
    });
}

/** C workers, each running `perClient` requests in turn through `one` (resolves [ttftMs, tokens]). */
export async function runLoad(c, perClient, prompt, one) {
  const ttft = [];
  let tokens = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (let r = 0; r < perClient; r++) {
        const [first, n] = await one(prompt());
        ttft.push(first);
        tokens += n;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1e3;
  const sorted = [...ttft].sort((a, b) => a - b);
  return {
    clients: c,
    requests: c * perClient,
    tokens,
    outputTokensPerS: tokens / seconds,
    ttftMsP50: sorted[Math.floor(sorted.length / 2)],
    ttftMsP99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))],
  };
}
