/**
 * Tiny Llama-family checkpoints written by the tests themselves (never downloaded): config.json
 * in either transformers form, safetensors weights (single or sharded with its index) in f32, f16
 * or bf16, and an independent float64 forward over the same rounded weights to check logits against.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DType, fromNumbers, toFloat64 } from '@fastattention/core';

export interface TinySpec {
  readonly architecture: 'llama' | 'mistral' | 'qwen2';
  readonly vocab: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Written as head_dim when given (may differ from hidden / heads). */
  readonly headDim?: number;
  readonly tie?: boolean;
  readonly theta?: number;
  /** rope_scaling / rope_parameters fields besides the type (llama3 or linear here). */
  readonly rope?: { readonly type: 'llama3' | 'linear'; readonly [key: string]: unknown };
  /**
   * 'v4': rope_theta + rope_scaling (llama3 with `rope_type`, as Llama 3.1 ships it; linear with
   * `type`); 'v5': rope_parameters (with `rope_type`).
   */
  readonly form?: 'v4' | 'v5';
  readonly dtype: DType;
  readonly shards?: number;
  readonly slidingWindow?: number;
  /** max_position_embeddings (default 64). */
  readonly maxPositions?: number;
}

export interface TinyCheckpoint {
  readonly dir: string;
  readonly config: Record<string, unknown>;
  /** Every weight as stored (rounded to the checkpoint dtype), float64. */
  readonly weights: Map<string, { shape: number[]; values: Float64Array }>;
}

const DTYPE_NAME: Record<DType, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export async function writeTinyCheckpoint(
  dir: string,
  spec: TinySpec,
  rand: () => number,
): Promise<TinyCheckpoint> {
  await mkdir(dir, { recursive: true });
  const D = spec.headDim ?? spec.hidden / spec.heads;
  const ropeFields = spec.rope
    ? Object.fromEntries(Object.entries(spec.rope).filter(([k]) => k !== 'type'))
    : {};
  const architectures = {
    llama: 'LlamaForCausalLM',
    mistral: 'MistralForCausalLM',
    qwen2: 'Qwen2ForCausalLM',
  };
  const config: Record<string, unknown> = {
    architectures: [architectures[spec.architecture]],
    model_type: spec.architecture,
    vocab_size: spec.vocab,
    hidden_size: spec.hidden,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    ...(spec.headDim !== undefined && { head_dim: spec.headDim }),
    rms_norm_eps: 1e-5,
    max_position_embeddings: spec.maxPositions ?? 64,
    tie_word_embeddings: spec.tie ?? false,
    hidden_act: 'silu',
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[spec.dtype],
    bos_token_id: 1,
    eos_token_id: [2, 3],
    ...(spec.slidingWindow !== undefined && { sliding_window: spec.slidingWindow }),
  };
  if (spec.form === 'v5') {
    config.rope_parameters = {
      rope_type: spec.rope?.type ?? 'default',
      rope_theta: spec.theta ?? 10000,
      ...ropeFields,
    };
  } else {
    config.rope_theta = spec.theta ?? 10000;
    // v4 configs name the kind `rope_type` (Llama 3.1's own config.json) or, older, `type`
    const key = spec.rope?.type === 'llama3' ? 'rope_type' : 'type';
    config.rope_scaling = spec.rope ? { [key]: spec.rope.type, ...ropeFields } : null;
  }
  const weights = new Map<string, { shape: number[]; values: Float64Array }>();
  const add = (name: string, shape: number[], scale: number, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const raw = Float64Array.from({ length: n }, () => offset + (rand() * 2 - 1) * scale);
    weights.set(name, { shape, values: toFloat64(fromNumbers(raw, spec.dtype), spec.dtype) });
  };
  const qkvBias = spec.architecture === 'qwen2';
  add('model.embed_tokens.weight', [spec.vocab, spec.hidden], 1);
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [spec.hidden], 0.2, 1);
    for (const [proj, rows] of [
      ['q', spec.heads * D],
      ['k', spec.kvHeads * D],
      ['v', spec.kvHeads * D],
    ] as const) {
      // q and k large enough that attention is far from uniform, so positions (RoPE) matter
      add(
        `${p}.self_attn.${proj}_proj.weight`,
        [rows, spec.hidden],
        (proj === 'v' ? 1 : 3) / Math.sqrt(spec.hidden),
      );
      if (qkvBias) add(`${p}.self_attn.${proj}_proj.bias`, [rows], 0.2);
    }
    add(`${p}.self_attn.o_proj.weight`, [spec.hidden, spec.heads * D], 1 / Math.sqrt(spec.heads * D));
    add(`${p}.post_attention_layernorm.weight`, [spec.hidden], 0.2, 1);
    add(`${p}.mlp.gate_proj.weight`, [spec.intermediate, spec.hidden], 1 / Math.sqrt(spec.hidden));
    add(`${p}.mlp.up_proj.weight`, [spec.intermediate, spec.hidden], 1 / Math.sqrt(spec.hidden));
    add(`${p}.mlp.down_proj.weight`, [spec.hidden, spec.intermediate], 1 / Math.sqrt(spec.intermediate));
  }
  add('model.norm.weight', [spec.hidden], 0.2, 1);
  if (!spec.tie) add('lm_head.weight', [spec.vocab, spec.hidden], 1 / Math.sqrt(spec.hidden));

  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const names = [...weights.keys()];
  const shards = spec.shards ?? 1;
  if (shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), names, weights, spec.dtype);
  } else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = names.filter((_, i) => i % shards === s);
      for (const n of part) weightMap[n] = file;
      await writeSafetensors(join(dir, file), part, weights, spec.dtype);
    }
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
  }
  return { dir, config, weights };
}

/** A safetensors file: header length, JSON header (padded to 8 bytes), then the data. */
export async function writeSafetensors(
  file: string,
  names: readonly string[],
  weights: ReadonlyMap<string, { shape: number[]; values: Float64Array }>,
  dtype: DType,
  dtypeName = DTYPE_NAME[dtype],
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const { shape, values } = weights.get(name)!;
    const data = fromNumbers(values, dtype);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype: dtypeName, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  await writeFile(file, Buffer.concat([length, Buffer.from(json), ...chunks]));
}

/**
 * The float64 forward of a tiny checkpoint, written from the definitions (not from the runtime's
 * code): logits [n, vocab] for tokens at positions 0..n-1.
 */
export function referenceLogits(ckpt: TinyCheckpoint, tokens: ArrayLike<number>): Float64Array {
  const c = ckpt.config as Record<string, number & unknown> & Record<string, unknown>;
  const w = (name: string) => ckpt.weights.get(name)!.values;
  const H = c.hidden_size as number;
  const heads = c.num_attention_heads as number;
  const kvHeads = c.num_key_value_heads as number;
  const D = (c.head_dim as number | undefined) ?? H / heads;
  const V = c.vocab_size as number;
  const n = tokens.length;
  const eps = c.rms_norm_eps as number;
  const window = c.sliding_window as number | undefined;
  const invFreq = referenceFrequencies(ckpt.config, D);
  const matmul = (
    x: Float64Array,
    rows: number,
    weight: Float64Array,
    outDim: number,
    inDim: number,
    bias?: Float64Array,
  ) => {
    const out = new Float64Array(rows * outDim);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < outDim; j++) {
        let acc = bias ? bias[j]! : 0;
        for (let t = 0; t < inDim; t++) acc += x[i * inDim + t]! * weight[j * inDim + t]!;
        out[i * outDim + j] = acc;
      }
    return out;
  };
  const norm = (x: Float64Array, weight: Float64Array) => {
    const out = new Float64Array(x.length);
    for (let i = 0; i < n; i++) {
      let ss = 0;
      for (let j = 0; j < H; j++) ss += x[i * H + j]! ** 2;
      const inv = 1 / Math.sqrt(ss / H + eps);
      for (let j = 0; j < H; j++) out[i * H + j] = x[i * H + j]! * inv * weight[j]!;
    }
    return out;
  };
  const rope = (x: Float64Array, nh: number) => {
    const half = invFreq.length;
    for (let i = 0; i < n; i++)
      for (let h = 0; h < nh; h++)
        for (let p = 0; p < half; p++) {
          const at = (i * nh + h) * D;
          const [a, b] = [x[at + p]!, x[at + p + half]!];
          const [cos, sin] = [Math.cos(i * invFreq[p]!), Math.sin(i * invFreq[p]!)];
          x[at + p] = a * cos - b * sin;
          x[at + p + half] = b * cos + a * sin;
        }
  };
  const x = new Float64Array(n * H);
  const embed = w('model.embed_tokens.weight');
  for (let i = 0; i < n; i++) x.set(embed.subarray(tokens[i]! * H, (tokens[i]! + 1) * H), i * H);
  const bias = (name: string) => ckpt.weights.get(name)?.values;
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}`;
    const h = norm(x, w(`${p}.input_layernorm.weight`));
    const q = matmul(
      h,
      n,
      w(`${p}.self_attn.q_proj.weight`),
      heads * D,
      H,
      bias(`${p}.self_attn.q_proj.bias`),
    );
    const k = matmul(
      h,
      n,
      w(`${p}.self_attn.k_proj.weight`),
      kvHeads * D,
      H,
      bias(`${p}.self_attn.k_proj.bias`),
    );
    const v = matmul(
      h,
      n,
      w(`${p}.self_attn.v_proj.weight`),
      kvHeads * D,
      H,
      bias(`${p}.self_attn.v_proj.bias`),
    );
    rope(q, heads);
    rope(k, kvHeads);
    const attn = new Float64Array(n * heads * D);
    for (let i = 0; i < n; i++)
      for (let hq = 0; hq < heads; hq++) {
        const hk = Math.floor(hq / (heads / kvHeads));
        const first = window !== undefined ? Math.max(0, i - window + 1) : 0;
        const scores: number[] = [];
        for (let j = first; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[(i * heads + hq) * D + d]! * k[(j * kvHeads + hk) * D + d]!;
          scores.push(s / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = first; j <= i; j++) acc += (e[j - first]! / sum) * v[(j * kvHeads + hk) * D + d]!;
          attn[(i * heads + hq) * D + d] = acc;
        }
      }
    const o = matmul(attn, n, w(`${p}.self_attn.o_proj.weight`), H, heads * D);
    for (let i = 0; i < x.length; i++) x[i]! += o[i]!;
    const h2 = norm(x, w(`${p}.post_attention_layernorm.weight`));
    const F = c.intermediate_size as number;
    const gate = matmul(h2, n, w(`${p}.mlp.gate_proj.weight`), F, H);
    const up = matmul(h2, n, w(`${p}.mlp.up_proj.weight`), F, H);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
    const down = matmul(act, n, w(`${p}.mlp.down_proj.weight`), H, F);
    for (let i = 0; i < x.length; i++) x[i]! += down[i]!;
  }
  const head = ckpt.weights.get('lm_head.weight')?.values ?? embed;
  return matmul(norm(x, w('model.norm.weight')), n, head, V, H);
}

/** Inverse frequencies from the raw config: default, linear and llama3 (transformers' formulas). */
function referenceFrequencies(config: Record<string, unknown>, D: number): Float64Array {
  const params = (config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, number | string>;
  const theta = (params.rope_theta ?? config.rope_theta ?? 10000) as number;
  const kind = (params.rope_type ?? params.type ?? 'default') as string;
  const inv = Float64Array.from({ length: D / 2 }, (_, i) => theta ** (-(2 * i) / D));
  if (kind === 'linear') return inv.map((f) => f / (params.factor as number));
  if (kind !== 'llama3') return inv;
  const [factor, low, high, original] = [
    params.factor as number,
    params.low_freq_factor as number,
    params.high_freq_factor as number,
    params.original_max_position_embeddings as number,
  ];
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < original / high) return f;
    if (wavelen > original / low) return f / factor;
    const smooth = (original / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** GPT-2's byte-to-character map of byte-level BPE vocabularies. */
function byteCharacters(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : 256 + extra++));
  return chars;
}

export const TOKENIZER_SPECIALS = ['<unk>', '<s>', '</s>', '<|eot|>'] as const;
export const CHAT_TEMPLATE =
  '{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|eot|>{% endfor %}' +
  '{% if add_generation_prompt %}<|assistant|>{% endif %}';

/**
 * A byte-level BPE tokenizer's tokenizer.json (specials 0-3, the 256 bytes 4-259, then a few
 * merges), with its vocabulary and merges.
 */
export function tinyTokenizerJson(): { vocab: Record<string, number>; merges: string[]; json: object } {
  const chars = byteCharacters();
  const vocab: Record<string, number> = {};
  TOKENIZER_SPECIALS.forEach((t, i) => {
    vocab[t] = i;
  });
  chars.forEach((c, b) => {
    vocab[c] = 4 + b;
  });
  const space = chars[0x20]!;
  const merges = [
    ['h', 'e'],
    ['l', 'l'],
    ['he', 'll'],
    [space, 'w'],
    ['o', 'r'],
  ];
  for (const [a, b] of merges) vocab[a! + b!] = Object.keys(vocab).length;
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TOKENIZER_SPECIALS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return { vocab, merges: merges.map(([a, b]) => `${a} ${b}`), json };
}

/** tinyTokenizerJson's tokenizer.json and a tokenizer_config.json with a chat template; returns the vocabulary size. */
export async function writeTinyTokenizer(dir: string): Promise<number> {
  const { vocab, json: tokenizer } = tinyTokenizerJson();
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<s>', eos_token: '</s>', chat_template: CHAT_TEMPLATE }),
  );
  return Object.keys(vocab).length;
}

/** GGUF value types used here. */
const GGUF = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;
type GgufValue = number | string | boolean | { readonly of: number; readonly values: (string | number)[] };
const GGML_TYPE: Record<DType, number> = { f32: 0, f16: 1, bf16: 30 };

/**
 * The same checkpoint as a GGUF file, as llama.cpp's converter writes one: llama.cpp tensor names,
 * dimensions innermost first, and for the llama architecture q and k rows in its RoPE order.
 * `typeOverride` writes every tensor's type field as that GGML type (to test refusals);
 * `ropeFreqs` adds llama.cpp's per-pair RoPE factors as an f32 `rope_freqs.weight` tensor.
 */
export async function writeTinyGguf(
  file: string,
  ckpt: TinyCheckpoint,
  dtype: DType,
  options: {
    readonly typeOverride?: number;
    readonly ropeFreqs?: Float32Array;
    /** The tiny tokenizer (tinyTokenizerJson) as llama.cpp stores a byte-level BPE one. */
    readonly tokenizer?: { readonly pre?: string; readonly addBos?: boolean };
  } = {},
): Promise<void> {
  const { typeOverride, ropeFreqs } = options;
  const c = ckpt.config as Record<string, unknown>;
  const arch = c.model_type === 'qwen2' ? 'qwen2' : 'llama';
  const heads = c.num_attention_heads as number;
  const kvHeads = c.num_key_value_heads as number;
  const kv: Array<[string, number, GgufValue]> = [
    ['general.architecture', GGUF.string, arch],
    [`${arch}.block_count`, GGUF.u32, c.num_hidden_layers as number],
    [`${arch}.context_length`, GGUF.u32, c.max_position_embeddings as number],
    [`${arch}.embedding_length`, GGUF.u32, c.hidden_size as number],
    [`${arch}.feed_forward_length`, GGUF.u32, c.intermediate_size as number],
    [`${arch}.attention.head_count`, GGUF.u32, heads],
    [`${arch}.attention.head_count_kv`, GGUF.u32, kvHeads],
    [`${arch}.attention.layer_norm_rms_epsilon`, GGUF.f32, c.rms_norm_eps as number],
    [`${arch}.rope.freq_base`, GGUF.f32, (c.rope_theta as number | undefined) ?? 10000],
    ['tokenizer.ggml.bos_token_id', GGUF.u32, 1],
    ['tokenizer.ggml.eos_token_id', GGUF.u32, 2],
  ];
  if (c.head_dim !== undefined) kv.push([`${arch}.attention.key_length`, GGUF.u32, c.head_dim as number]);
  if (options.tokenizer) {
    const { vocab, merges } = tinyTokenizerJson();
    const tokens = Object.entries(vocab)
      .sort((a, b) => a[1] - b[1])
      .map(([t]) => t);
    const specials = new Set<string>(TOKENIZER_SPECIALS);
    kv.push(
      ['tokenizer.ggml.model', GGUF.string, 'gpt2'],
      ['tokenizer.ggml.tokens', GGUF.array, { of: GGUF.string, values: tokens }],
      [
        'tokenizer.ggml.token_type',
        GGUF.array,
        { of: GGUF.i32, values: tokens.map((t) => (specials.has(t) ? 3 : 1)) },
      ],
      ['tokenizer.ggml.merges', GGUF.array, { of: GGUF.string, values: merges }],
      ['tokenizer.ggml.add_bos_token', GGUF.bool, options.tokenizer.addBos ?? true],
      ['tokenizer.chat_template', GGUF.string, CHAT_TEMPLATE],
    );
    if (options.tokenizer.pre) kv.push(['tokenizer.ggml.pre', GGUF.string, options.tokenizer.pre]);
  }
  const names: Array<[string, string]> = [];
  const layerNames: Array<[string, string]> = [
    ['input_layernorm.weight', 'attn_norm.weight'],
    ['post_attention_layernorm.weight', 'ffn_norm.weight'],
    ['self_attn.q_proj.weight', 'attn_q.weight'],
    ['self_attn.q_proj.bias', 'attn_q.bias'],
    ['self_attn.k_proj.weight', 'attn_k.weight'],
    ['self_attn.k_proj.bias', 'attn_k.bias'],
    ['self_attn.v_proj.weight', 'attn_v.weight'],
    ['self_attn.v_proj.bias', 'attn_v.bias'],
    ['self_attn.o_proj.weight', 'attn_output.weight'],
    ['mlp.gate_proj.weight', 'ffn_gate.weight'],
    ['mlp.up_proj.weight', 'ffn_up.weight'],
    ['mlp.down_proj.weight', 'ffn_down.weight'],
  ];
  for (const hf of ckpt.weights.keys()) {
    const layer = /^model\.layers\.(\d+)\.(.*)$/.exec(hf);
    const g = layer
      ? `blk.${layer[1]}.${layerNames.find(([h]) => h === layer[2])![1]}`
      : {
          'model.embed_tokens.weight': 'token_embd.weight',
          'model.norm.weight': 'output_norm.weight',
          'lm_head.weight': 'output.weight',
        }[hf]!;
    names.push([hf, g]);
  }
  const permute = (values: Float64Array, n: number, cols: number) => {
    const rows = values.length / cols;
    const half = rows / n / 2;
    const out = new Float64Array(values.length);
    for (let h = 0; h < n; h++)
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < half; i++) {
          const from = (h * 2 * half + j * half + i) * cols;
          out.set(values.subarray(from, from + cols), (h * 2 * half + 2 * i + j) * cols);
        }
    return out;
  };
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  parts.push(Buffer.from('GGUF'), u32(3), u64(names.length + (ropeFreqs ? 1 : 0)), u64(kv.length));
  const value = (type: number, v: GgufValue): Buffer[] => {
    if (type === GGUF.string) return [str(String(v))];
    if (type === GGUF.u32 || type === GGUF.i32) return [u32(Number(v) >>> 0)];
    if (type === GGUF.bool) return [Buffer.of(v ? 1 : 0)];
    if (type === GGUF.array) {
      const { of, values } = v as { of: number; values: (string | number)[] };
      return [u32(of), u64(values.length), ...values.flatMap((x) => value(of, x))];
    }
    const b = Buffer.alloc(4);
    b.writeFloatLE(Number(v));
    return [b];
  };
  for (const [key, type, v] of kv) parts.push(str(key), u32(type), ...value(type, v));
  const data: Buffer[] = [];
  let offset = 0;
  for (const [hf, g] of names) {
    const { shape, values } = ckpt.weights.get(hf)!;
    const ordered =
      arch === 'llama' && /^attn_[qk]\.weight$/.test(g.split('.').slice(2).join('.'))
        ? permute(values, g.includes('attn_q') ? heads : kvHeads, shape[1]!)
        : values;
    const typed = fromNumbers(ordered, dtype);
    const bytes = Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
    parts.push(
      str(g),
      u32(shape.length),
      ...[...shape].reverse().map(u64),
      u32(typeOverride ?? GGML_TYPE[dtype]),
      u64(offset),
    );
    const padded = Math.ceil(bytes.length / 32) * 32;
    data.push(bytes, Buffer.alloc(padded - bytes.length));
    offset += padded;
  }
  if (ropeFreqs) {
    parts.push(str('rope_freqs.weight'), u32(1), u64(ropeFreqs.length), u32(GGML_TYPE.f32), u64(offset));
    const bytes = Buffer.from(ropeFreqs.buffer, ropeFreqs.byteOffset, ropeFreqs.byteLength);
    data.push(bytes, Buffer.alloc(Math.ceil(bytes.length / 32) * 32 - bytes.length));
  }
  const header = Buffer.concat(parts);
  const pad = Buffer.alloc((32 - (header.length % 32)) % 32);
  await writeFile(file, Buffer.concat([header, pad, ...data]));
}
