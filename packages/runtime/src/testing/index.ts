/**
 * `@fastattention/runtime/testing`: tiny Llama-family checkpoints written by the caller's tests
 * (config, safetensors, tokenizer files, GGUF), never downloaded, and a float64 reference forward
 * over the same weights to check logits against.
 */
export * from './tiny-checkpoint.js';
