/**
 * A GGUF file's tokenizer as the `tokenizer.json` and `tokenizer_config.json` it stands for, so that
 * the same tokenizer library reads both. Byte-level BPE tokenizers (`tokenizer.ggml.model` 'gpt2':
 * Llama 3, Qwen2 and most recent models) are rebuilt from the vocabulary, the merges and the token
 * types; the pre-tokenizer is the one `tokenizer.ggml.pre` names. SentencePiece vocabularies
 * ('llama': Llama 2, Mistral) and pre-tokenizers not listed here give no tokenizer (the model still
 * loads, and runs on token ids), rather than one that splits text differently from the original.
 */

/** The split patterns of the pre-tokenizers by `tokenizer.ggml.pre` (JS syntax: case-insensitive contractions spelled out). */
const CONTRACTIONS = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
/** Llama 3's pattern (digits in groups of up to three) and Qwen2's (one digit at a time). */
const LLAMA3_SPLIT = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2_SPLIT = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const SPLIT_PATTERNS: Record<string, string> = {
  'llama-bpe': LLAMA3_SPLIT,
  llama3: LLAMA3_SPLIT,
  qwen2: QWEN2_SPLIT,
};
/** GPT-2's own pattern, which the ByteLevel pre-tokenizer applies itself. */
const GPT2_PRE = new Set([undefined, 'default', 'gpt2']);

/** llama.cpp's token types that are special tokens: control (3) and user-defined (4). */
const CONTROL = 3;
const USER_DEFINED = 4;

export interface GgufTokenizerFiles {
  readonly json: object;
  readonly config: Record<string, unknown>;
}

/** The tokenizer files a GGUF's metadata stands for, or undefined when it cannot be rebuilt faithfully. */
export function ggufTokenizerFiles(meta: Record<string, unknown>): GgufTokenizerFiles | undefined {
  const tokens = meta['tokenizer.ggml.tokens'];
  if (meta['tokenizer.ggml.model'] !== 'gpt2' || !isStrings(tokens)) return undefined;
  const pre = meta['tokenizer.ggml.pre'] as string | undefined;
  const pattern = typeof pre === 'string' ? SPLIT_PATTERNS[pre] : undefined;
  if (!pattern && !GPT2_PRE.has(pre)) return undefined;
  const merges = isStrings(meta['tokenizer.ggml.merges']) ? (meta['tokenizer.ggml.merges'] as string[]) : [];
  const types = Array.isArray(meta['tokenizer.ggml.token_type'])
    ? (meta['tokenizer.ggml.token_type'] as unknown[])
    : [];
  const id = (key: string) => {
    const v = meta[key];
    return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : undefined;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const addBos = meta['tokenizer.ggml.add_bos_token'] === true && bos !== undefined && bos < tokens.length;
  const added = types.flatMap((raw, i) => {
    const type = Number(raw);
    if (type !== CONTROL && type !== USER_DEFINED) return [];
    const special = type === CONTROL;
    return [
      {
        id: i,
        content: tokens[i],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: !special,
        special,
      },
    ];
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: !pattern };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: pattern
      ? {
          type: 'Sequence',
          pretokenizers: [
            { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
            byteLevel,
          ],
        }
      : byteLevel,
    post_processor: addBos
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: tokens[bos!], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: tokens[bos!], type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [tokens[bos!]!]: { id: tokens[bos!], ids: [bos], tokens: [tokens[bos!]] } },
        }
      : byteLevel,
    decoder: { ...byteLevel, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      // Llama 3 takes a whole word that is in the vocabulary as one token, merges or not
      ignore_merges: pre === 'llama-bpe' || pre === 'llama3',
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges,
    },
  };
  const text = (i: number | undefined) => (i !== undefined && i < tokens.length ? tokens[i] : undefined);
  const template = meta['tokenizer.chat_template'];
  const config = {
    ...(text(bos) !== undefined && { bos_token: text(bos) }),
    ...(text(eos) !== undefined && { eos_token: text(eos) }),
    ...(typeof template === 'string' && { chat_template: template }),
  };
  return { json, config };
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
