/**
 * Safetensors checkpoints, single or sharded (`model.safetensors.index.json`): each file is an
 * 8-byte little-endian header length, a JSON header naming every tensor's dtype, shape and byte
 * range, then the data. Only headers are read up front; a tensor's bytes are read straight into
 * the caller's buffer (a pinned tensor's memory), with no copy in between.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DType, FastAttentionError } from '@fastattention/core';

export interface CheckpointTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly file: string;
  /** Absolute byte offset of the data in `file`, and its length. */
  readonly offset: number;
  readonly bytes: number;
  /**
   * A q or k projection stored in llama.cpp's RoPE order (GGUF): within each of this many heads,
   * rows alternate between the two halves that the runtime's RoPE pairs (row 2i + j holds
   * half-split row j * headDim / 2 + i).
   */
  readonly interleavedHeads?: number;
}

const DTYPES: Record<string, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };
const MAX_HEADER = 100 << 20;

const formatError = (file: string, message: string) =>
  new FastAttentionError('INVALID_INPUT', `${file}: ${message}`, { field: 'checkpoint' });

/** The tensors of one safetensors file (headers only). */
export async function readSafetensorsHeader(file: string): Promise<CheckpointTensor[]> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const lengthBytes = Buffer.alloc(8);
    await fh.read(lengthBytes, 0, 8, 0);
    const length = Number(lengthBytes.readBigUInt64LE(0));
    if (size < 8 || length > MAX_HEADER || 8 + length > size)
      throw formatError(file, 'not a safetensors file');
    const headerBytes = Buffer.alloc(length);
    await fh.read(headerBytes, 0, length, 8);
    let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
    try {
      header = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      throw formatError(file, 'its header is not JSON');
    }
    const tensors: CheckpointTensor[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const dtype = DTYPES[String(entry.dtype)];
      if (!dtype) {
        throw new FastAttentionError(
          'UNSUPPORTED',
          `${file}: tensor ${name} has dtype ${String(entry.dtype)} (supported: F32, F16, BF16)`,
          { field: 'checkpoint' },
        );
      }
      const shape = entry.shape;
      const offsets = entry.data_offsets;
      if (
        !Array.isArray(shape) ||
        !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
        !Array.isArray(offsets) ||
        offsets.length !== 2
      ) {
        throw formatError(file, `tensor ${name} has a malformed shape or data_offsets`);
      }
      const [begin, end] = offsets as [number, number];
      const bytes = shape.reduce((a: number, d: number) => a * d, 1) * DTYPE_BYTES[dtype];
      if (end - begin !== bytes || 8 + length + end > size) {
        throw formatError(file, `tensor ${name}: its byte range does not match its shape or the file`);
      }
      tensors.push({ name, dtype, shape, file, offset: 8 + length + begin, bytes });
    }
    return tensors;
  } finally {
    await fh.close();
  }
}

/** Every tensor of a checkpoint directory: `model.safetensors`, or the shards its index names. */
export async function readCheckpoint(dir: string): Promise<Map<string, CheckpointTensor>> {
  let files: string[];
  try {
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map?: Record<string, string>;
    };
    files = [...new Set(Object.values(index.weight_map ?? {}))];
    if (files.length === 0) throw formatError(dir, 'model.safetensors.index.json has an empty weight_map');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    files = ['model.safetensors'];
  }
  const tensors = new Map<string, CheckpointTensor>();
  for (const file of files) {
    for (const t of await readSafetensorsHeader(join(dir, file))) tensors.set(t.name, t);
  }
  return tensors;
}

/** Reads a tensor's bytes into `into` (exactly `t.bytes` long). */
export async function readTensorBytes(t: CheckpointTensor, into: Uint8Array): Promise<void> {
  const fh = await open(t.file, 'r');
  try {
    let done = 0;
    while (done < t.bytes) {
      const { bytesRead } = await fh.read(into, done, t.bytes - done, t.offset + done);
      if (bytesRead === 0) throw formatError(t.file, `tensor ${t.name} ends early`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
