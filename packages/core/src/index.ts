export type {
  AttentionInput,
  AttentionOptions,
  AttentionOutput,
  ResolvedAttentionInput,
} from './attention.js';
export type {
  Backend,
  BackendCapabilities,
  BackendInfo,
  BackendOptions,
  DeviceInfo,
  DeviceKind,
  HeadDimSupport,
} from './backend.js';
export { type ArrayOf, allocate, bytesOf, DTYPES, type DType, type HostArray, isDType } from './dtype.js';
export {
  describeValue,
  type ErrorCode,
  FastAttentionError,
  type FastAttentionErrorOptions,
  invalidInput,
  isFastAttentionError,
  throwIfAborted,
  toFastAttentionError,
  unsupported,
} from './errors.js';
export type { Executor, StepGraph, Stream, StreamEvent } from './exec/executor.js';
export { attentionInputOf, attentionOpShape, hostAttention } from './exec/host-attention.js';
export {
  type AttentionCalls,
  type AttentionOpHandler,
  attentionHandler,
  HostExecutor,
  type OpBatcher,
  type OpHandlers,
} from './exec/host-executor.js';
export { HostTensor } from './exec/host-tensor.js';
export { opListGraph } from './exec/op-list-graph.js';
export {
  type AddOp,
  ATTENTION_ALGORITHMS,
  type AttentionAlgorithm,
  type AttentionOp,
  type CopyOp,
  type EmbeddingOp,
  forEachOpOutput,
  forEachOpTensor,
  type GatedActivationOp,
  type KvAppendOp,
  type LinearOp,
  type LseMergeOp,
  OP_KINDS,
  type Op,
  type OpKind,
  type OpOf,
  type RmsNormOp,
  type RopeAppend,
  type RopeOp,
  ropeAppendOp,
  type SampleOp,
  type SamplingTensors,
} from './exec/ops.js';
export { QueueStream } from './exec/queue-stream.js';
export * from './exec/rope.js';
export * from './exec/sampling.js';
export {
  allocateTensorArray,
  checkAlive,
  checkHostViewable,
  checkShape,
  checkTensorData,
  contiguousStrides,
  elementCount,
  isContiguous,
  type MatrixLayout,
  type MemoryKind,
  matrixLayout,
  TENSOR_DTYPES,
  type Tensor,
  type TensorArray,
  type TensorArrayOf,
  type TensorDType,
  type TensorLayout,
  tensorArrayOver,
  tensorBytesOf,
  type ViewSpec,
  viewLayout,
} from './exec/tensor.js';
export { validateOp } from './exec/validate-op.js';
export { kvHeadOf, kvIndex, lseIndex, qIndex } from './layout.js';
export { type Disposal, Lifetime } from './lifetime.js';
export {
  classifyBatch,
  classifyTiles,
  type TileBlocks,
  type TileGrid,
  TileKind,
  type TileMap,
  tileMapBytes,
} from './mask/classify.js';
export { TileMaskPattern } from './mask/pattern.js';
export { allowedKeys, type Band, bandOf, MASK_KINDS, type MaskKind, type MaskSpec } from './mask/spec.js';
export { fromNumbers, toFloat32, toFloat64 } from './numeric/convert.js';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './numeric/half.js';
export {
  ALL_BLOCK_SIZES,
  checkBlockTable,
  keyOffsets,
  MAX_BLOCK_SIZE,
  type PagedKV,
  type PagedKVSupport,
  pagedBlockLength,
  type ResolvedPagedKV,
} from './paged.js';
export { createReferenceBackend, referenceProvider } from './reference/backend.js';
export { type ExactResult, exactAttention, toOutput } from './reference/exact.js';
export { ReferenceExecutor } from './reference/exec/executor.js';
export { type StandardAttentionResult, standardAttention } from './reference/standard.js';
export {
  type BackendOptionsMap,
  type BackendOptionsOf,
  type BackendProvider,
  BackendRegistry,
  defaultRegistry,
  type Fallback,
  type ProbeResult,
  probeBackends,
  type ResolvePreferences,
  registerBackend,
  resolveBackend,
} from './registry.js';
export {
  type AttentionProblem,
  type AttentionShape,
  groupSize,
  kvLength,
  lseLength,
  qLength,
} from './shape.js';
export { mergePartials, type Partial } from './softmax/merge.js';
export { OnlineSoftmax } from './softmax/online.js';
export { type CostEstimate, estimateCost } from './tiling/cost.js';
export type {
  HardwareSpec,
  MemoryLevel,
  NativeTile,
  Operand,
  TileConfig,
  TileLevel,
} from './tiling/hardware.js';
export {
  type BufferUse,
  levelBytes,
  type PlanOptions,
  planTiles,
  splitRange,
  type TilePlan,
  type WorkItem,
  workItems,
} from './tiling/plan.js';
export { tiledAttention } from './tiling/tiled.js';
export {
  type AttentionProblemInput,
  MAX_DIMENSION,
  MAX_SCALE,
  type ResolvedAttentionProblem,
  readInputFields,
  validateAttentionInput,
  validateAttentionShape,
} from './validate.js';

import { referenceProvider } from './reference/backend.js';
import { registerBackend } from './registry.js';

// The reference backend is always there, so resolveBackend() always has a last resort.
registerBackend(referenceProvider);
