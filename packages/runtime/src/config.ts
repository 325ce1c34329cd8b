/**
 * A Hugging Face `config.json` of the Llama family, read into the one shape the runtime runs:
 * transformers v4 (`rope_theta` + `rope_scaling` with `type` or `rope_type`) and v5
 * (`rope_parameters`) forms alike. A field the runtime cannot run is refused with the field named.
 */
import { checkRopeSpec, FastAttentionError, type RopeScaling, type RopeSpec } from '@fastattention/core';
import { z } from 'zod';

export type Architecture = 'llama' | 'mistral' | 'qwen2';

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly rope: RopeSpec;
  readonly maxPositions: number;
  /** The LM head is the embedding table (no `lm_head.weight`). */
  readonly tieWordEmbeddings: boolean;
  /** q, k and v projections carry a bias (Qwen2; Llama's `attention_bias`). */
  readonly qkvBias: boolean;
  /** The output projection carries a bias (Llama's `attention_bias`). */
  readonly outBias: boolean;
  /** gate, up and down carry a bias (Llama's `mlp_bias`). */
  readonly mlpBias: boolean;
  /** Keys a query sees, itself included (Mistral's `sliding_window`); undefined: all before it. */
  readonly slidingWindow?: number;
  readonly bosTokenId?: number;
  readonly eosTokenIds: readonly number[];
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};
const MODEL_TYPES: Record<string, Architecture> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2' };

const positive = z.number().int().positive();
const tokenIds = z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullish();

const ropeParams = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: positive.optional(),
    beta_fast: z.number().positive().optional(),
    beta_slow: z.number().positive().optional(),
    attention_factor: z.number().positive().optional(),
    mscale: z.number().positive().optional(),
    mscale_all_dim: z.number().positive().optional(),
    partial_rotary_factor: z.number().positive().max(1).optional(),
  })
  .loose();

const schema = z
  .object({
    architectures: z.array(z.string()).optional(),
    model_type: z.string().optional(),
    vocab_size: positive,
    hidden_size: positive,
    intermediate_size: positive,
    num_hidden_layers: positive,
    num_attention_heads: positive,
    num_key_value_heads: positive.nullish(),
    head_dim: positive.nullish(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().nullish(),
    rope_scaling: ropeParams.nullish(),
    rope_parameters: ropeParams.nullish(),
    partial_rotary_factor: z.number().positive().max(1).nullish(),
    max_position_embeddings: positive.default(2048),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    sliding_window: positive.nullish(),
    use_sliding_window: z.boolean().optional(),
    max_window_layers: z.number().int().min(0).nullish(),
    layer_types: z.array(z.string()).nullish(),
    hidden_act: z.string().default('silu'),
    bos_token_id: tokenIds,
    eos_token_id: tokenIds,
  })
  .loose();

type RawConfig = z.infer<typeof schema>;

const configError = (
  field: string,
  message: string,
  code: 'INVALID_INPUT' | 'UNSUPPORTED' = 'INVALID_INPUT',
) => new FastAttentionError(code, `config.json: ${field}: ${message}`, { field: `config.${field}` });

/** Reads a parsed `config.json`; throws INVALID_INPUT or UNSUPPORTED naming `config.<field>`. */
export function parseConfig(json: unknown): ModelConfig {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw configError(issue.path.join('.') || '(root)', issue.message);
  }
  const raw = parsed.data;
  const architecture = architectureOf(raw);
  if (raw.hidden_act !== 'silu') {
    throw configError('hidden_act', `'${raw.hidden_act}' (the runtime runs SiLU-gated MLPs)`, 'UNSUPPORTED');
  }
  const heads = raw.num_attention_heads;
  const kvHeads = raw.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) {
    throw configError('num_key_value_heads', `${kvHeads} does not divide num_attention_heads ${heads}`);
  }
  const headDim = raw.head_dim ?? raw.hidden_size / heads;
  if (!Number.isInteger(headDim)) {
    throw configError('head_dim', `hidden_size ${raw.hidden_size} is not a multiple of ${heads} heads`);
  }
  const eos = raw.eos_token_id;
  const slidingWindow = slidingWindowOf(raw, architecture);
  return {
    architecture,
    vocabSize: raw.vocab_size,
    hiddenSize: raw.hidden_size,
    intermediateSize: raw.intermediate_size,
    layers: raw.num_hidden_layers,
    heads,
    kvHeads,
    headDim,
    rmsNormEps: raw.rms_norm_eps,
    rope: ropeOf(raw, headDim),
    maxPositions: raw.max_position_embeddings,
    tieWordEmbeddings: raw.tie_word_embeddings,
    qkvBias: architecture === 'qwen2' || raw.attention_bias,
    outBias: architecture !== 'qwen2' && raw.attention_bias,
    mlpBias: raw.mlp_bias,
    ...(slidingWindow !== undefined && { slidingWindow }),
    ...(typeof raw.bos_token_id === 'number' && { bosTokenId: raw.bos_token_id }),
    eosTokenIds: eos === null || eos === undefined ? [] : typeof eos === 'number' ? [eos] : eos,
  };
}

/**
 * The window every layer's attention uses, or undefined for none. Mistral windows every layer.
 * Qwen2 windows only with use_sliding_window, and then only the layers from max_window_layers on
 * (transformers v4) or those `layer_types` calls sliding_attention (v5): the runtime runs one window
 * for all layers, so a config that mixes windowed and full layers is UNSUPPORTED, named.
 */
function slidingWindowOf(raw: RawConfig, architecture: Architecture): number | undefined {
  const window = raw.sliding_window ?? undefined;
  if (architecture === 'mistral') return window;
  if (architecture !== 'qwen2' || raw.use_sliding_window !== true || window === undefined) return undefined;
  const layers = raw.num_hidden_layers;
  const types = raw.layer_types;
  if (types) {
    const sliding = types.filter((t) => t === 'sliding_attention').length;
    if (sliding === 0) return undefined;
    if (sliding === layers) return window;
    throw configError(
      'layer_types',
      `${sliding} of ${layers} layers slide: mixed windows are not supported`,
      'UNSUPPORTED',
    );
  }
  const from = raw.max_window_layers ?? 28; // transformers' default
  if (from >= layers) return undefined;
  if (from === 0) return window;
  throw configError(
    'max_window_layers',
    `${from}: only layers ${from}-${layers - 1} would slide; mixed windows are not supported`,
    'UNSUPPORTED',
  );
}

function architectureOf(raw: RawConfig): Architecture {
  for (const name of raw.architectures ?? []) {
    const a = ARCHITECTURES[name];
    if (a) return a;
  }
  const byType = raw.model_type ? MODEL_TYPES[raw.model_type] : undefined;
  if (byType) return byType;
  const named = raw.architectures?.join(', ') ?? raw.model_type ?? 'none given';
  throw configError(
    raw.architectures ? 'architectures' : 'model_type',
    `${named} (supported: ${Object.keys(ARCHITECTURES).join(', ')})`,
    'UNSUPPORTED',
  );
}

/** RoPE from `rope_parameters` (v5) or `rope_theta` + `rope_scaling` (v4). */
function ropeOf(raw: RawConfig, headDim: number): RopeSpec {
  const v5 = raw.rope_parameters ?? undefined;
  const params = v5 ?? raw.rope_scaling ?? {};
  const field = v5 ? 'rope_parameters' : 'rope_scaling';
  const theta = v5?.rope_theta ?? raw.rope_theta ?? 10000;
  const kind = params.rope_type ?? params.type ?? 'default';
  const factor = (): number => {
    if (params.factor === undefined) throw configError(`${field}.factor`, `required by rope_type '${kind}'`);
    return params.factor;
  };
  const original = (): number => {
    const n = params.original_max_position_embeddings;
    if (n === undefined) {
      throw configError(`${field}.original_max_position_embeddings`, `required by rope_type '${kind}'`);
    }
    return n;
  };
  let scaling: RopeScaling;
  switch (kind) {
    case 'default':
      scaling = { kind: 'default' };
      break;
    case 'linear':
      scaling = { kind: 'linear', factor: factor() };
      break;
    case 'dynamic':
      // transformers grows the base past max_position_embeddings for 'dynamic'
      scaling = { kind: 'dynamic', factor: factor(), originalMaxPositions: raw.max_position_embeddings };
      break;
    case 'llama3':
      scaling = {
        kind: 'llama3',
        factor: factor(),
        lowFreqFactor: params.low_freq_factor ?? 1,
        highFreqFactor: params.high_freq_factor ?? 4,
        originalMaxPositions: original(),
      };
      break;
    case 'yarn':
      scaling = {
        kind: 'yarn',
        factor: factor(),
        originalMaxPositions: params.original_max_position_embeddings ?? raw.max_position_embeddings,
        ...(params.beta_fast !== undefined && { betaFast: params.beta_fast }),
        ...(params.beta_slow !== undefined && { betaSlow: params.beta_slow }),
        ...(params.attention_factor !== undefined && { attentionFactor: params.attention_factor }),
        ...(params.mscale !== undefined && { mscale: params.mscale }),
        ...(params.mscale_all_dim !== undefined && { mscaleAllDim: params.mscale_all_dim }),
      };
      break;
    default:
      throw configError(
        `${field}.rope_type`,
        `'${kind}' (supported: default, linear, dynamic, llama3, yarn)`,
        'UNSUPPORTED',
      );
  }
  const partial = params.partial_rotary_factor ?? raw.partial_rotary_factor ?? 1;
  const rotaryDim = 2 * Math.floor((headDim * partial) / 2);
  const spec: RopeSpec = { theta, rotaryDim, scaling };
  checkRopeSpec(spec, headDim);
  return spec;
}
