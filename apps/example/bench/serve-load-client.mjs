// The HTTP side of serve-load.mjs, in its own process: C clients, each streaming R completions in
// turn from the server at BASE; prints { clients, requests, tokens, outputTokensPerS, ttftMsP50,
// ttftMsP99 } as JSON.
//   node serve-load-client.mjs BASE C R PROMPT_TOKENS MAX_TOKENS VOCAB SEED
import { promptSource, runLoad } from './load-loop.mjs';

const [base, ...numbers] = process.argv.slice(2);
const [c, perClient, promptTokens, maxTokens, vocab, seed] = numbers.map(Number);

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

const prompt = promptSource(promptTokens, vocab, seed);
await one(prompt()); // warm-up, not timed: this process's first request pays for its JIT and connection
console.log(JSON.stringify(await runLoad(c, perClient, prompt, one)));
