// The HTTP side of serve-load.mjs, in its own process: C clients, each streaming R completions in
// turn from the server at BASE; prints { clients, requests, tokens, outputTokensPerS, ttftMsP50,
// ttftMsP99 } as JSON.
//   node serve-load-client.mjs BASE C R PROMPT_TOKENS MAX_TOKENS VOCAB SEED
const [base, ...numbers] = process.argv.slice(2);
const [c, perClient, promptTokens, maxTokens, vocab, seed] = numbers.map(Number);
let state = seed;
const prompt = () =>
  Array.from({ length: promptTokens }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % vocab;
  });
const sorted = (xs) => [...xs].sort((a, b) => a - b);

/** One streamed completion: its SSE events read as they come (logprobs: one event per token). */
async function one(ids) {
  const start = performance.now();
  const response = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: ids,
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
      stream: true,
      logprobs: 0,
    }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let first;
  let n = 0;
  let pending = '';
  const decoder = new TextDecoder();
  for await (const bytes of response.body) {
    pending += decoder.decode(bytes, { stream: true });
    let end = pending.indexOf('\n\n');
    while (end >= 0) {
      const event = pending.slice(0, end);
      pending = pending.slice(end + 2);
      end = pending.indexOf('\n\n');
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      if (JSON.parse(event.slice(6)).choices?.[0]?.logprobs?.tokens?.length) {
        first ??= performance.now() - start;
        n++;
      }
    }
  }
  return [first, n];
}

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
const s = sorted(ttft);
console.log(
  JSON.stringify({
    clients: c,
    requests: c * perClient,
    tokens,
    outputTokensPerS: tokens / seconds,
    ttftMsP50: s[Math.floor(s.length / 2)],
    ttftMsP99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))],
  }),
);
