/** Every error this project throws carries one of these codes. */
export type ErrorCode =
  | 'INVALID_INPUT' // the caller passed something the contract forbids
  | 'UNSUPPORTED' // valid input that this backend cannot run (head dim, dtype, mask)
  | 'UNAVAILABLE' // the backend cannot be created here (no addon, no driver, no device)
  | 'DEVICE' // the device or driver reported an error
  | 'OOM' // an allocation failed
  | 'ABORTED' // an AbortSignal fired before the work started
  | 'DISPOSED' // the backend was used after dispose()
  | 'INTERNAL'; // a bug: please report it

export interface FastAttentionErrorOptions {
  /** The input field at fault, as a path: `'q'`, `'mask.left'`, `'seqLensK[3]'`. */
  field?: string;
  cause?: unknown;
}

/** The one error type of the project: a `code` to branch on and the `field` at fault. */
export class FastAttentionError extends Error {
  override name = 'FastAttentionError';
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: FastAttentionErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }
}

export const invalidInput = (field: string, message: string): FastAttentionError =>
  new FastAttentionError('INVALID_INPUT', `${field}: ${message}`, { field });

export const unsupported = (field: string, message: string): FastAttentionError =>
  new FastAttentionError('UNSUPPORTED', `${field}: ${message}`, { field });

export function isFastAttentionError(value: unknown): value is FastAttentionError {
  return value instanceof FastAttentionError;
}

/**
 * Turns any thrown value into a FastAttentionError without losing it: native addons throw plain
 * Errors with a string `code`, which is kept when it is one of ours.
 */
export function toFastAttentionError(value: unknown, fallback: ErrorCode = 'INTERNAL'): FastAttentionError {
  if (value instanceof FastAttentionError) return value;
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    const field = (value as { field?: unknown }).field;
    const err = new FastAttentionError(isErrorCode(code) ? code : fallback, value.message, {
      cause: value,
      ...(typeof field === 'string' ? { field } : {}),
    });
    if (value.stack) err.stack = value.stack;
    return err;
  }
  return new FastAttentionError(fallback, String(value), { cause: value });
}

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'INVALID_INPUT',
  'UNSUPPORTED',
  'UNAVAILABLE',
  'DEVICE',
  'OOM',
  'ABORTED',
  'DISPOSED',
  'INTERNAL',
]);

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

/** Throws the ABORTED error if the signal has fired. Call before starting work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new FastAttentionError('ABORTED', 'attention was aborted before it started', {
      cause: signal.reason,
    });
  }
}

/** A value as an error message shows it: a type name for objects and arrays, strings quoted. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  return String(value);
}
