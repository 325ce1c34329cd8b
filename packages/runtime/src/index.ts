/**
 * `@fastattention/runtime`: Llama-family models on any backend that implements core's execution
 * contract. So far: Hugging Face checkpoints (config.json in its v4 and v5 forms, safetensors
 * single or sharded) and GGUF files (f32/f16/bf16 tensors) loaded through pinned memory, `model.logits(tokens)` and `model.generate`
 * for one sequence at a time.
 */
export { type Architecture, type ModelConfig, parseConfig } from './config.js';
export type {
  FinishReason,
  GenerateChunk,
  GenerateOptions,
  GenerateResult,
  Generation,
} from './generate.js';
export { readGguf } from './gguf.js';
export { type LoadModelOptions, loadModel, Model, type ModelInfo } from './model.js';
export { type CheckpointTensor, readCheckpoint, readSafetensorsHeader } from './safetensors.js';
export type {
  SchedulerOptions,
  SchedulerStats,
} from './scheduler.js';
export {
  applyChatTemplate,
  type ChatMessage,
  IncrementalDecoder,
  readTokenizer,
  StopMatcher,
  type Tokenizer,
} from './tokenizer.js';
export type { LoadProgress } from './weights.js';
