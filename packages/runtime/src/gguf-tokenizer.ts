/**
 * A GGUF file's tokenizer as the `tokenizer.json` and `tokenizer_config.json` it stands for, so that
 * the same tokenizer library reads both.
 * - Byte-level BPE (`tokenizer.ggml.model` 'gpt2': Llama 3, Qwen2 and most recent models): rebuilt
 *   from the vocabulary, the merges and the token types; the pre-tokenizer is the one
 *   `tokenizer.ggml.pre` names.
 * - SentencePiece BPE ('llama': Llama 2, Mistral): rebuilt as transformers writes a Llama
 *   tokenizer.json, the merges derived from the pieces' scores (spmTokenizerFiles).
 * Pre-tokenizers not listed here, and a vocabulary without what it needs, give no tokenizer (the
 * model still loads, and runs on token ids), rather than one that splits text differently.
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

/** llama.cpp's token types: normal pieces (1), unknown (2), control (3), user-defined (4). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
/** SentencePiece's word-boundary mark, which stands for a space. */
const SPACE = '\u2581';

export interface GgufTokenizerFiles {
  readonly json: object;
  readonly config: Record<string, unknown>;
}

/** The tokenizer files a GGUF's metadata stands for, or undefined when it cannot be rebuilt faithfully. */
export function ggufTokenizerFiles(meta: Record<string, unknown>): GgufTokenizerFiles | undefined {
  const tokens = meta['tokenizer.ggml.tokens'];
  if (!isStrings(tokens)) return undefined;
  if (meta['tokenizer.ggml.model'] === 'llama') return spmTokenizerFiles(meta, tokens);
  if (meta['tokenizer.ggml.model'] !== 'gpt2') return undefined;
  const pre = meta['tokenizer.ggml.pre'] as string | undefined;
  const pattern = typeof pre === 'string' ? SPLIT_PATTERNS[pre] : undefined;
  if (!pattern && !GPT2_PRE.has(pre)) return undefined;
  const merges = isStrings(meta['tokenizer.ggml.merges']) ? (meta['tokenizer.ggml.merges'] as string[]) : [];
  const bos = idOf(meta, 'tokenizer.ggml.bos_token_id');
  const addBos = meta['tokenizer.ggml.add_bos_token'] === true;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: !pattern };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(meta, tokens),
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
    post_processor: (addBos && bosTemplate(tokens, bos)) || byteLevel,
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
  return { json, config: configOf(meta, tokens) };
}

/**
 * A SentencePiece BPE vocabulary as transformers' Llama tokenizer.json: a space mark prepended
 * and spaces replaced by it, BPE with byte fallback (the <0xXX> pieces), and the decoder undoing
 * both. GGUF keeps each piece's score but no merges; SentencePiece merges the adjacent pair whose
 * joined piece scores highest, so each normal piece that splits into two pieces of the vocabulary
 * is a merge, ranked by its score (ties by the halves' ids), as transformers' converter derives them.
 */
function spmTokenizerFiles(
  meta: Record<string, unknown>,
  tokens: readonly string[],
): GgufTokenizerFiles | undefined {
  const scores = meta['tokenizer.ggml.scores'];
  const types = tokenTypes(meta);
  if (!Array.isArray(scores) || scores.length !== tokens.length || types.length !== tokens.length)
    return undefined;
  const index = new Map(tokens.map((t, i) => [t, i]));
  const merges: { pair: string; score: number; left: number; right: number }[] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== NORMAL) return;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = index.get(chars.slice(0, k).join(''));
      const right = index.get(chars.slice(k).join(''));
      if (left === undefined || right === undefined) continue;
      merges.push({ pair: `${tokens[left]} ${tokens[right]}`, score: Number(scores[id]), left, right });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.left - b.left || a.right - b.right);
  const unk = idOf(meta, 'tokenizer.ggml.unknown_token_id') ?? types.indexOf(UNKNOWN);
  const bos = idOf(meta, 'tokenizer.ggml.bos_token_id');
  // SentencePiece models add BOS unless the file says otherwise (llama.cpp's default too).
  const addBos = meta['tokenizer.ggml.add_bos_token'] !== false;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(meta, tokens, true),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: addBos ? (bosTemplate(tokens, bos) ?? null) : null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk >= 0 && unk < tokens.length ? tokens[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges: merges.map((m) => m.pair),
    },
  };
  return { json, config: configOf(meta, tokens) };
}

function idOf(meta: Record<string, unknown>, key: string): number | undefined {
  const v = meta[key];
  return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : undefined;
}

function tokenTypes(meta: Record<string, unknown>): number[] {
  const types = meta['tokenizer.ggml.token_type'];
  return Array.isArray(types) ? types.map(Number) : [];
}

/**
 * Control tokens (and, for SentencePiece, the unknown token) as special added tokens, user-defined
 * ones as plain added tokens.
 */
function addedTokens(
  meta: Record<string, unknown>,
  tokens: readonly string[],
  unknownIsSpecial = false,
): object[] {
  return tokenTypes(meta).flatMap((type, i) => {
    if (type !== CONTROL && type !== USER_DEFINED && !(unknownIsSpecial && type === UNKNOWN)) return [];
    const special = type !== USER_DEFINED;
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
}

/** The post-processor that puts BOS in front of every sequence, or undefined without a BOS. */
function bosTemplate(tokens: readonly string[], bos: number | undefined): object | undefined {
  if (bos === undefined || bos >= tokens.length) return undefined;
  const bosToken = tokens[bos]!;
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bosToken, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bosToken, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bosToken]: { id: bosToken, ids: [bos], tokens: [bosToken] } },
  };
}

/** tokenizer_config.json's BOS, EOS and chat template. */
function configOf(meta: Record<string, unknown>, tokens: readonly string[]): Record<string, unknown> {
  const text = (key: string) => {
    const i = idOf(meta, key);
    return i !== undefined && i < tokens.length ? tokens[i] : undefined;
  };
  const bos = text('tokenizer.ggml.bos_token_id');
  const eos = text('tokenizer.ggml.eos_token_id');
  const template = meta['tokenizer.chat_template'];
  return {
    ...(bos !== undefined && { bos_token: bos }),
    ...(eos !== undefined && { eos_token: eos }),
    ...(typeof template === 'string' && { chat_template: template }),
  };
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
