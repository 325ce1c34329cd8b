/**
 * `fastattn generate` and `fastattn chat`: a model's text streamed to stdout as it is generated,
 * the figures (tokens, time to first token, tok/s, why it stopped) on stderr. Ctrl-C during a reply
 * cancels the reply; in `chat` it keeps the program, and `/reset` forgets the conversation.
 */
import { createInterface } from 'node:readline';
import { invalidInput, isFastAttentionError } from '@fastattention/core';
import type { GenerateOptions, GenerateResult, Model } from '@fastattention/runtime';
import { loadForCommand, type ModelOptions } from './load.js';

export interface SamplingFlags {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  readonly seed?: number;
  readonly stop?: string[];
}

export interface GenerateCommandOptions extends ModelOptions, SamplingFlags {
  readonly prompt?: string;
  readonly json?: boolean;
}

export interface ChatCommandOptions extends ModelOptions, SamplingFlags {
  readonly system?: string;
}

const samplingOf = (o: SamplingFlags): GenerateOptions => ({
  maxTokens: o.maxTokens,
  temperature: o.temperature,
  ...(o.topP !== undefined && { topP: o.topP }),
  ...(o.topK !== undefined && { topK: o.topK }),
  ...(o.minP !== undefined && { minP: o.minP }),
  ...(o.seed !== undefined && { seed: o.seed }),
  ...(o.stop && { stop: o.stop }),
});

interface Reply {
  readonly result: GenerateResult;
  readonly firstTokenMs: number | undefined;
  readonly totalMs: number;
}

/** Streams one generation's text to `out`; aborting `controller` (Ctrl-C) ends it early. */
async function streamReply(
  model: Model,
  options: GenerateOptions,
  out: NodeJS.WritableStream,
  controller: AbortController,
): Promise<Reply> {
  const start = performance.now();
  let firstTokenMs: number | undefined;
  const generation = model.generate({ ...options, signal: controller.signal });
  for await (const chunk of generation) {
    firstTokenMs ??= performance.now() - start;
    out.write(chunk.text);
  }
  const result = await generation.result;
  return { result, firstTokenMs, totalMs: performance.now() - start };
}

function figures({ result, firstTokenMs, totalMs }: Reply): string {
  const { promptTokens, completionTokens } = result.usage;
  const decodeMs = firstTokenMs === undefined ? 0 : totalMs - firstTokenMs;
  const rate = completionTokens > 1 && decodeMs > 0 ? ((completionTokens - 1) / decodeMs) * 1e3 : undefined;
  return [
    `${promptTokens} prompt + ${completionTokens} generated tokens`,
    firstTokenMs === undefined ? 'no token' : `first token after ${firstTokenMs.toFixed(0)} ms`,
    rate === undefined ? undefined : `${rate.toFixed(1)} tok/s`,
    result.finishReason === 'abort' ? 'cancelled' : `finished: ${result.finishReason}`,
  ]
    .filter(Boolean)
    .join(', ');
}

export async function generateCommand(o: GenerateCommandOptions): Promise<void> {
  const prompt = o.prompt ?? (await readStdin());
  if (!prompt) throw invalidInput('prompt', 'none given: pass --prompt TEXT or pipe the prompt on stdin');
  const loaded = await loadForCommand(o);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const options = { prompt, ...samplingOf(o) };
    if (o.json) {
      const { result, firstTokenMs, totalMs } = await streamReply(loaded.model, options, nowhere, controller);
      const { text, finishReason, usage } = result;
      console.log(JSON.stringify({ text, finishReason, usage, firstTokenMs, totalMs }));
      return;
    }
    const reply = await streamReply(loaded.model, options, process.stdout, controller);
    process.stdout.write('\n');
    console.error(figures(reply));
  } finally {
    process.off('SIGINT', onSigint);
    await loaded.dispose();
  }
}

export async function chatCommand(o: ChatCommandOptions): Promise<void> {
  const loaded = await loadForCommand(o);
  const history: { role: string; content: string }[] = [];
  const reset = () => {
    history.length = 0;
    if (o.system) history.push({ role: 'system', content: o.system });
  };
  reset();
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  // Ctrl-C: cancels the reply being written, or at the prompt, quits (readline takes the key).
  let replying: AbortController | undefined;
  rl.on('SIGINT', () => (replying ? replying.abort() : rl.close()));
  console.error('chat: /reset forgets the conversation, /exit (or Ctrl-D) quits; Ctrl-C cancels a reply');
  // Lines are read as an iterator, so lines piped in while a reply is written wait their turn.
  rl.setPrompt('> ');
  rl.prompt();
  try {
    for await (const input of rl) {
      const line = input.trim();
      if (line === '/exit') break;
      if (line === '/reset') {
        reset();
        console.error('(conversation forgotten)');
      } else if (line) {
        history.push({ role: 'user', content: line });
        replying = new AbortController();
        const options = { messages: [...history], ...samplingOf(o) };
        try {
          const reply = await streamReply(loaded.model, options, process.stdout, replying);
          process.stdout.write('\n');
          console.error(`(${figures(reply)})`);
          history.push({ role: 'assistant', content: reply.result.text });
        } catch (error) {
          // A conversation grown past what a sequence may hold: say so and keep the program.
          if (!isFastAttentionError(error) || error.code !== 'INVALID_INPUT') throw error;
          history.pop();
          console.error(`(not sent: ${error.message}; /reset starts a new conversation)`);
        } finally {
          replying = undefined;
        }
      }
      rl.prompt();
    }
  } finally {
    rl.close();
    await loaded.dispose();
  }
}

const nowhere = { write: () => true } as unknown as NodeJS.WritableStream;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text.trim();
}
