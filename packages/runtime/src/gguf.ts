/**
 * GGUF files (llama.cpp's format) with f32, f16 or bf16 tensors, read with @huggingface/gguf: the
 * metadata becomes the config.json the runtime already reads, the tensors get their Hugging Face
 * names and shapes. llama.cpp stores the q and k rows of Llama-architecture models in the
 * interleaved-pair order of its RoPE; they are marked so the loader puts them back in the
 * half-split order (one strided copy on the device). A `rope_freqs` tensor (llama.cpp's per-pair
 * RoPE factors, written for Llama 3.1 and later instead of the llama3 parameters) becomes the
 * RoPE spec's `factors` scaling. A byte-level BPE tokenizer in the metadata becomes the model's
 * tokenizer (gguf-tokenizer.ts).
 */
import { open } from 'node:fs/promises';
import { checkRopeSpec, FastAttentionError } from '@fastattention/core';
import { GGMLQuantizationType, gguf } from '@huggingface/gguf';
import { type ModelConfig, parseConfig } from './config.js';
import { ggufTokenizerFiles } from './gguf-tokenizer.js';
import type { CheckpointTensor } from './safetensors.js';
import { type Tokenizer, tokenizerOf } from './tokenizer.js';

const DTYPES: Partial<Record<GGMLQuantizationType, CheckpointTensor['dtype']>> = {
  [GGMLQuantizationType.F32]: 'f32',
  [GGMLQuantizationType.F16]: 'f16',
  [GGMLQuantizationType.BF16]: 'bf16',
};
const BYTES = { f32: 4, f16: 2, bf16: 2 } as const;
const ARCHITECTURES: Record<string, string> = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM' };

/** llama.cpp tensor names and their Hugging Face counterparts (`{n}`: the layer). */
const NAMES: ReadonlyArray<[RegExp, string]> = [
  [/^token_embd\.weight$/, 'model.embed_tokens.weight'],
  [/^output_norm\.weight$/, 'model.norm.weight'],
  [/^output\.weight$/, 'lm_head.weight'],
  [/^blk\.(\d+)\.attn_norm\.weight$/, 'model.layers.{n}.input_layernorm.weight'],
  [/^blk\.(\d+)\.ffn_norm\.weight$/, 'model.layers.{n}.post_attention_layernorm.weight'],
  [/^blk\.(\d+)\.attn_q\.(weight|bias)$/, 'model.layers.{n}.self_attn.q_proj.{p}'],
  [/^blk\.(\d+)\.attn_k\.(weight|bias)$/, 'model.layers.{n}.self_attn.k_proj.{p}'],
  [/^blk\.(\d+)\.attn_v\.(weight|bias)$/, 'model.layers.{n}.self_attn.v_proj.{p}'],
  [/^blk\.(\d+)\.attn_output\.(weight|bias)$/, 'model.layers.{n}.self_attn.o_proj.{p}'],
  [/^blk\.(\d+)\.ffn_gate\.(weight|bias)$/, 'model.layers.{n}.mlp.gate_proj.{p}'],
  [/^blk\.(\d+)\.ffn_up\.(weight|bias)$/, 'model.layers.{n}.mlp.up_proj.{p}'],
  [/^blk\.(\d+)\.ffn_down\.(weight|bias)$/, 'model.layers.{n}.mlp.down_proj.{p}'],
];

const ggufError = (file: string, message: string, code: 'INVALID_INPUT' | 'UNSUPPORTED' = 'INVALID_INPUT') =>
  new FastAttentionError(code, `${file}: ${message}`, { field: 'checkpoint' });

/** The config, tensors and tokenizer (when one can be rebuilt) of a GGUF file. */
export async function readGguf(file: string): Promise<{
  config: ModelConfig;
  tensors: Map<string, CheckpointTensor>;
  tokenizer: Tokenizer | undefined;
}> {
  let parsed: Awaited<ReturnType<typeof gguf>>;
  try {
    parsed = await gguf(file, { allowLocalFile: true });
  } catch (error) {
    throw ggufError(file, `not a readable GGUF file (${(error as Error).message})`);
  }
  const meta = parsed.metadata as unknown as Record<string, unknown>;
  const arch = String(meta['general.architecture']);
  if (!ARCHITECTURES[arch]) {
    throw new FastAttentionError(
      'UNSUPPORTED',
      `${file}: general.architecture '${arch}' (supported: ${Object.keys(ARCHITECTURES).join(', ')})`,
      { field: 'general.architecture' },
    );
  }
  const num = (key: string): number | undefined => {
    const v = meta[`${arch}.${key}`];
    return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined;
  };
  const infos = new Map(parsed.tensorInfos.map((t) => [t.name, t]));
  const embed = infos.get('token_embd.weight');
  if (!embed) throw ggufError(file, 'has no token_embd.weight');
  const heads = num('attention.head_count');
  const kvHeads = num('attention.head_count_kv') ?? heads;
  const hidden = num('embedding_length');
  const headDim = num('attention.key_length') ?? (hidden && heads ? hidden / heads : undefined);
  const rotary = num('rope.dimension_count');
  const scaling = meta[`${arch}.rope.scaling.type`];
  let config = parseConfig({
    architectures: [ARCHITECTURES[arch]],
    vocab_size: Number(embed.shape[1]),
    hidden_size: hidden,
    intermediate_size: num('feed_forward_length'),
    num_hidden_layers: num('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: num('attention.layer_norm_rms_epsilon'),
    rope_theta: num('rope.freq_base') ?? 10000,
    ...(rotary !== undefined && headDim && rotary !== headDim && { partial_rotary_factor: rotary / headDim }),
    rope_scaling:
      typeof scaling === 'string' && scaling !== 'none'
        ? {
            type: scaling,
            factor: num('rope.scaling.factor'),
            original_max_position_embeddings: num('rope.scaling.original_context_length'),
          }
        : null,
    max_position_embeddings: num('context_length') ?? 2048,
    tie_word_embeddings: !infos.has('output.weight'),
    sliding_window: num('attention.sliding_window'),
    use_sliding_window: num('attention.sliding_window') !== undefined,
    bos_token_id: meta['tokenizer.ggml.bos_token_id'],
    eos_token_id: meta['tokenizer.ggml.eos_token_id'],
  });
  const ropeFreqs = infos.get('rope_freqs.weight');
  if (ropeFreqs) {
    if (typeof scaling === 'string' && scaling !== 'none') {
      throw ggufError(
        file,
        `rope_freqs.weight together with ${arch}.rope.scaling.type '${scaling}'`,
        'UNSUPPORTED',
      );
    }
    const factors = await readRopeFactors(file, parsed.tensorDataOffset + ropeFreqs.offset, ropeFreqs);
    // checked like any RoPE spec: rotaryDim / 2 finite factors > 0
    const rope = checkRopeSpec(
      { ...config.rope, scaling: { kind: 'factors', factors } },
      config.headDim,
      'rope_freqs',
    );
    config = { ...config, rope };
  }
  const tensors = new Map<string, CheckpointTensor>();
  for (const info of parsed.tensorInfos) {
    const name = hfName(info.name);
    if (!name) continue;
    const dtype = DTYPES[info.dtype];
    if (!dtype) {
      throw ggufError(
        file,
        `tensor ${info.name} is ${GGMLQuantizationType[info.dtype] ?? `type ${info.dtype}`} (supported: F32, F16, BF16; quantized tensors are not)`,
        'UNSUPPORTED',
      );
    }
    const shape = info.shape.map(Number).reverse(); // GGUF lists the innermost dimension first
    const interleaved =
      arch === 'llama' && /\.(q|k)_proj\.weight$/.test(name)
        ? name.includes('.q_proj.')
          ? config.heads
          : config.kvHeads
        : undefined;
    tensors.set(name, {
      name,
      dtype,
      shape,
      file,
      offset: Number(parsed.tensorDataOffset + info.offset),
      bytes: shape.reduce((a, d) => a * d, 1) * BYTES[dtype],
      ...(interleaved !== undefined && { interleavedHeads: interleaved }),
    });
  }
  const files = ggufTokenizerFiles(meta);
  const tokenizer = files && tokenizerOf(files.json, files.config, `${file}: tokenizer.ggml.*`);
  return { config, tensors, tokenizer };
}

/** llama.cpp's per-pair RoPE factors (Llama 3.1 and later): an f32 vector of rotaryDim / 2. */
async function readRopeFactors(
  file: string,
  offset: bigint,
  info: { readonly dtype: GGMLQuantizationType; readonly shape: readonly bigint[] },
): Promise<number[]> {
  if (info.dtype !== GGMLQuantizationType.F32 || info.shape.length !== 1) {
    throw ggufError(file, 'rope_freqs.weight: expected a 1-D F32 tensor');
  }
  const count = Number(info.shape[0]);
  const bytes = Buffer.alloc(count * 4);
  const handle = await open(file, 'r');
  try {
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, Number(offset));
    if (bytesRead !== bytes.length) throw ggufError(file, 'rope_freqs.weight: the file ends inside it');
  } finally {
    await handle.close();
  }
  return Array.from({ length: count }, (_, i) => bytes.readFloatLE(4 * i));
}

function hfName(name: string): string | undefined {
  for (const [pattern, to] of NAMES) {
    const m = pattern.exec(name);
    if (m) return to.replace('{n}', m[1] ?? '').replace('{p}', m[2] ?? '');
  }
  return undefined;
}
