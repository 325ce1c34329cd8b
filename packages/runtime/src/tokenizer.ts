/**
 * A checkpoint's tokenizer and chat template, through Hugging Face's own JavaScript libraries:
 * `tokenizer.json` with @huggingface/tokenizers, the `chat_template` of `tokenizer_config.json`
 * with @huggingface/jinja. Plus what streaming needs on top: incremental decoding that never splits
 * a multi-byte character, and stop strings that are never partly emitted.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FastAttentionError, invalidInput } from '@fastattention/core';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  readonly content: string;
}

export interface Tokenizer {
  /** Token ids of `text`; special tokens (BOS) added as the tokenizer's post-processor says. */
  encode(text: string, options?: { readonly addSpecialTokens?: boolean }): Int32Array;
  decode(tokens: ArrayLike<number>, options?: { readonly skipSpecialTokens?: boolean }): string;
  readonly bosToken?: string;
  readonly eosToken?: string;
  /** The chat template's source, when the checkpoint has one. */
  readonly chatTemplate?: string;
}

/** A `tokenizer_config.json` token: a string, or an AddedToken object. */
type TokenField = string | { content?: string } | null | undefined;
const tokenText = (t: TokenField): string | undefined =>
  typeof t === 'string' ? t : (t?.content ?? undefined);

/** Reads `tokenizer.json` and `tokenizer_config.json` of a checkpoint; undefined without them. */
export async function readTokenizer(dir: string): Promise<Tokenizer | undefined> {
  let json: object;
  try {
    json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FastAttentionError('INVALID_INPUT', `${dir}/tokenizer.json: ${(error as Error).message}`, {
      field: 'tokenizer',
      cause: error,
    });
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return tokenizerOf(json, config, `${dir}/tokenizer.json`);
}

/**
 * A tokenizer from the contents of `tokenizer.json` and `tokenizer_config.json` (a GGUF file's
 * tokenizer is turned into the same two objects); `where` names their source in errors.
 */
export function tokenizerOf(json: object, config: Record<string, unknown>, where: string): Tokenizer {
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json, config);
  } catch (error) {
    throw new FastAttentionError('UNSUPPORTED', `${where}: ${(error as Error).message}`, {
      field: 'tokenizer',
      cause: error,
    });
  }
  const template = config.chat_template;
  const chatTemplate =
    typeof template === 'string'
      ? template
      : Array.isArray(template)
        ? (template as Array<{ name?: string; template?: string }>).find((t) => t.name === 'default')
            ?.template
        : undefined;
  const bosToken = tokenText(config.bos_token as TokenField);
  const eosToken = tokenText(config.eos_token as TokenField);
  return {
    encode: (text, options = {}) =>
      Int32Array.from(hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids),
    decode: (tokens, options = {}) =>
      tokens.length === 0
        ? ''
        : hf.decode(Array.from(tokens), { skip_special_tokens: options.skipSpecialTokens ?? true }),
    ...(bosToken !== undefined && { bosToken }),
    ...(eosToken !== undefined && { eosToken }),
    ...(chatTemplate !== undefined && { chatTemplate }),
  };
}

/** Renders a conversation with the checkpoint's chat template, ready for the assistant's turn. */
export function applyChatTemplate(
  tokenizer: Tokenizer | undefined,
  messages: readonly ChatMessage[],
  options: { readonly addGenerationPrompt?: boolean } = {},
): string {
  if (!tokenizer?.chatTemplate) throw invalidInput('messages', 'the checkpoint has no chat template');
  if (
    !Array.isArray(messages) ||
    messages.some((m) => typeof m?.role !== 'string' || typeof m.content !== 'string')
  ) {
    throw invalidInput('messages', 'expected an array of { role, content } with string fields');
  }
  return new Template(tokenizer.chatTemplate).render({
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: tokenizer.bosToken ?? '',
    eos_token: tokenizer.eosToken ?? '',
  });
}

/**
 * Text of a growing token sequence, piece by piece: each new token's text is the decode of a short
 * window that ends with it minus the decode of the same window without it (tokenizers that drop a
 * leading space of a lone token decode it in context), held back while it ends in an incomplete
 * UTF-8 character (U+FFFD).
 */
export class IncrementalDecoder {
  readonly #tokenizer: Tokenizer;
  readonly #ids: number[] = [];
  #prefix = 0; // window start
  #read = 0; // tokens whose text was emitted

  constructor(tokenizer: Tokenizer, context: ArrayLike<number> = []) {
    this.#tokenizer = tokenizer;
    // The last prompt tokens give the first generated token its context.
    const tail = Array.from(context).slice(-4);
    this.#ids.push(...tail);
    this.#prefix = 0;
    this.#read = tail.length;
  }

  push(token: number): string {
    this.#ids.push(token);
    const before = this.#tokenizer.decode(this.#ids.slice(this.#prefix, this.#read));
    const after = this.#tokenizer.decode(this.#ids.slice(this.#prefix));
    if (after.length <= before.length || after.endsWith('\uFFFD')) return '';
    this.#prefix = this.#read;
    this.#read = this.#ids.length;
    return after.slice(before.length);
  }

  /** Text still held back once the sequence ends (an incomplete character decodes as U+FFFD). */
  flush(): string {
    const before = this.#tokenizer.decode(this.#ids.slice(this.#prefix, this.#read));
    const after = this.#tokenizer.decode(this.#ids.slice(this.#prefix));
    this.#prefix = this.#read = this.#ids.length;
    return after.length > before.length ? after.slice(before.length) : '';
  }
}

/**
 * Text held back while it could be the start of a stop string: `push` returns what is safe to emit
 * and whether a stop string was found (the text before it is emitted, the rest dropped).
 */
export class StopMatcher {
  readonly #stops: readonly string[];
  #pending = '';

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  push(text: string): { readonly text: string; readonly stopped: boolean } {
    this.#pending += text;
    let cut = -1;
    for (const stop of this.#stops) {
      const at = this.#pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const out = this.#pending.slice(0, cut);
      this.#pending = '';
      return { text: out, stopped: true };
    }
    // Keep the longest suffix that is a prefix of some stop string.
    let keep = 0;
    for (const stop of this.#stops) {
      for (let n = Math.min(stop.length - 1, this.#pending.length); n > keep; n--) {
        if (this.#pending.endsWith(stop.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    const out = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    return { text: out, stopped: false };
  }

  /** What is left once generation ends without a stop string. */
  flush(): string {
    const out = this.#pending;
    this.#pending = '';
    return out;
  }
}
