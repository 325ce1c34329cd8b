/**
 * The backend conformance suite: everything the contract promises, as a list of named cases a
 * plugin author runs in one call against a provider. Framework-free: `runConformance` returns a
 * report; `@fastattention/core/testing/vitest` turns the same cases into vitest tests.
 */
import type { AttentionInput } from '../attention.js';
import type { Backend, BackendCapabilities } from '../backend.js';
import type { DType } from '../dtype.js';
import { FastAttentionError } from '../errors.js';
import { kvIndex, qIndex } from '../layout.js';
import { allowedKeys, bandOf, type MaskKind, type MaskSpec } from '../mask/spec.js';
import { fromNumbers } from '../numeric/convert.js';
import type { BackendProvider } from '../registry.js';
import type { AttentionShape } from '../shape.js';
import { compareToReference, randomInput, randomSeed, rng, TOLERANCE, withinTolerance } from './kit.js';
import { randomPagedCase } from './paged.js';

export interface ConformanceOptions {
  /** Passed to `provider.create()`. */
  readonly createOptions?: Record<string, unknown>;
  /** Case names (or name prefixes) to leave out, e.g. `['event loop']` for a backend that runs on the JS thread. */
  readonly skip?: readonly string[];
  /** Longest gap between timer ticks allowed while a call runs. Default 50 ms (a loaded CI machine). */
  readonly maxEventLoopGapMs?: number;
}

export interface ConformanceCase {
  readonly name: string;
  run(backend: Backend): Promise<void>;
}

export interface ConformanceResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly ms: number;
}

/** Thrown by a case that found the backend breaking the contract. */
export class ConformanceError extends Error {
  override name = 'ConformanceError';
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ConformanceError(message);
}

/** The head dims a case uses: small ones the backend runs (lists: the smallest two). */
function headDimsOf(caps: BackendCapabilities): number[] {
  if (caps.headDims.kind === 'list') return [...caps.headDims.values].sort((a, b) => a - b).slice(0, 2);
  const max = caps.headDims.max ?? Number.POSITIVE_INFINITY;
  return [8, 64].filter((d) => d <= max);
}

function maskOf(kind: MaskKind): MaskSpec {
  return kind === 'window' ? { kind, left: 5, right: 2 } : { kind };
}

/** Odd sizes, decode, GQA/MQA and ragged valid lengths (one row with no key at all). */
const SHAPES: readonly { shape: Omit<AttentionShape, 'headDim'>; seqLensK?: number[] }[] = [
  { shape: { batch: 1, seqQ: 17, seqK: 17, headsQ: 2, headsKV: 2 } },
  { shape: { batch: 2, seqQ: 1, seqK: 100, headsQ: 8, headsKV: 2 }, seqLensK: [100, 37] },
  { shape: { batch: 3, seqQ: 9, seqK: 33, headsQ: 4, headsKV: 1 }, seqLensK: [33, 0, 20] },
  { shape: { batch: 1, seqQ: 70, seqK: 130, headsQ: 3, headsKV: 3 } },
];

/** Chunked prefill against a longer cache, and a GQA decode, over paged caches. */
const PAGED_SHAPES: readonly Omit<AttentionShape, 'headDim'>[] = [
  { batch: 3, seqQ: 5, seqK: 70, headsQ: 4, headsKV: 2 },
  { batch: 2, seqQ: 1, seqK: 300, headsQ: 8, headsKV: 2 },
];

async function expectAccurate(backend: Backend, input: AttentionInput, label: string): Promise<void> {
  const { out, lse } = await backend.attention(input);
  const errors = compareToReference(input, out, lse);
  check(
    withinTolerance(errors, input.dtype),
    `${label}: error ${errors.out.toExponential(2)} (tolerance ${TOLERANCE[input.dtype]}), lse error ${errors.lse.toExponential(2)}, ${errors.bad} entries of the wrong kind (NaN/Inf/-Inf)`,
  );
}

async function expectRejection(
  promise: Promise<unknown>,
  code: FastAttentionError['code'],
  field: string | undefined,
  label: string,
) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  check(error !== undefined, `${label}: resolved, expected a rejection with ${code}`);
  check(
    error instanceof FastAttentionError,
    `${label}: rejected with ${String(error)}, not a FastAttentionError`,
  );
  check(error.code === code, `${label}: code ${error.code}, expected ${code} (${error.message})`);
  if (field !== undefined) check(error.field === field, `${label}: field ${error.field}, expected ${field}`);
}

/** Writes `value` into every K/V slot that `mask` hides from every row of its batch row. */
function poisonInvisible(input: AttentionInput, value: number, seqLensK: Int32Array): void {
  const band = bandOf(input.mask ?? { kind: 'none' });
  const bits = encode(value, input.dtype);
  for (let b = 0; b < input.batch; b++) {
    const seen = new Uint8Array(input.seqK);
    for (let i = 0; i < input.seqQ; i++) {
      const [start, end] = allowedKeys(band, i, input.seqQ, seqLensK[b]!);
      seen.fill(1, start, end);
    }
    for (let j = 0; j < input.seqK; j++) {
      if (seen[j]) continue;
      for (let h = 0; h < input.headsKV; h++) {
        const at = kvIndex(input, b, j, h);
        input.k.fill(bits, at, at + input.headDim);
        input.v.fill(bits, at, at + input.headDim);
      }
    }
  }
}

/** The stored form of a value: the value itself for f32, raw bits for f16/bf16. */
const encode = (value: number, dtype: DType): number => fromNumbers([value], dtype)[0]!;

const EVENT_LOOP_TRIES = 3;

/** The longest gap between 1 ms timer ticks while `work` runs. */
async function worstTimerGap(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    last = performance.now();
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last);
}

/** Every case of the contract, sized for a loaded CI machine. */
export function conformanceCases(options: ConformanceOptions = {}): ConformanceCase[] {
  const maxGap = options.maxEventLoopGapMs ?? 50;
  const seed = randomSeed();
  const cases: ConformanceCase[] = [
    {
      name: `numerics: every dtype, mask, odd size, GQA and valid length against the float64 reference (seed ${seed})`,
      async run(backend) {
        const rand = rng(seed);
        const caps = backend.info.capabilities;
        for (const dtype of caps.dtypes)
          for (const headDim of headDimsOf(caps))
            for (const kind of caps.masks)
              for (const { shape, seqLensK } of SHAPES) {
                const extra = {
                  mask: maskOf(kind),
                  ...(seqLensK ? { seqLensK: Int32Array.from(seqLensK) } : {}),
                };
                const input = randomInput(rand, dtype, { ...shape, headDim }, extra);
                await expectAccurate(
                  backend,
                  input,
                  `${dtype} hd ${headDim} ${kind} ${JSON.stringify(shape)}`,
                );
              }
      },
    },
    {
      name: `invisible keys: NaN, +Inf and -Inf in K/V slots no row may see never reach an output (seed ${seed})`,
      async run(backend) {
        const rand = rng(seed + 1);
        const caps = backend.info.capabilities;
        const headDim = headDimsOf(caps)[0]!;
        for (const dtype of caps.dtypes)
          for (const kind of caps.masks)
            for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
              // Long enough that a window hides keys at the start; padded rows leave garbage at the end.
              const seqLensK = Int32Array.of(61, 40);
              const shape = { batch: 2, seqQ: 7, seqK: 64, headsQ: 4, headsKV: 2, headDim };
              const input = randomInput(rand, dtype, shape, { mask: maskOf(kind), seqLensK });
              poisonInvisible(input, value, seqLensK);
              await expectAccurate(backend, input, `${dtype} ${kind} garbage ${value}`);
            }
      },
    },
    {
      name: 'keys hidden from some rows only: NaN in V at a key later rows see leaves earlier rows exact',
      async run(backend) {
        const caps = backend.info.capabilities;
        if (!caps.masks.includes('causal')) return;
        const rand = rng(seed + 7);
        for (const dtype of caps.dtypes) {
          const shape = {
            batch: 1,
            seqQ: 40,
            seqK: 40,
            headsQ: 4,
            headsKV: 2,
            headDim: headDimsOf(caps)[0]!,
          };
          const input = randomInput(rand, dtype, shape, { mask: { kind: 'causal' } });
          for (let h = 0; h < shape.headsKV; h++)
            input.v[kvIndex(input, 0, 20, h) + 3] = encode(Number.NaN, dtype);
          await expectAccurate(backend, input, `${dtype} causal, NaN in V at key 20`);
        }
      },
    },
    {
      name: 'NaN propagation: NaN in a visible q or k makes exactly the rows that see it NaN',
      async run(backend) {
        const caps = backend.info.capabilities;
        const dtype = caps.dtypes[0]!;
        const headDim = headDimsOf(caps)[0]!;
        const shape = { batch: 1, seqQ: 6, seqK: 6, headsQ: 2, headsKV: 2, headDim };
        const mask = caps.masks.includes('causal') ? maskOf('causal') : maskOf('none');
        const input = randomInput(rng(seed + 2), dtype, shape, { mask });
        input.q[qIndex(input, 0, 1, 0) + 1] = encode(Number.NaN, dtype); // row 1 of head 0
        input.k[kvIndex(input, 0, 4, 1)] = encode(Number.NaN, dtype); // key 4 of head 1
        await expectAccurate(backend, input, `${dtype} ${mask.kind} with NaN in q and k`);
      },
    },
    {
      name: `paged KV: shared blocks, NaN in unused slots and blocks, garbage table entries, every mask (seed ${seed})`,
      async run(backend) {
        const caps = backend.info.capabilities;
        const rand = rng(seed + 8);
        const headDim = headDimsOf(caps)[0]!;
        const support = caps.pagedKV;
        if (!support) {
          const { paged } = randomPagedCase(
            rand,
            caps.dtypes[0]!,
            { ...PAGED_SHAPES[0]!, headDim },
            { blockSize: 16 },
          );
          await expectRejection(
            backend.attention(paged),
            'UNSUPPORTED',
            'pagedKV',
            'paged input, no pagedKV capability',
          );
          return;
        }
        // Every power of two of the contract's range (16 to 256) the backend has, and its own smallest size.
        const sizes = [support.minBlockSize, 16, 32, 64, 128, 256].filter(
          (size, i, all) =>
            size >= support.minBlockSize && size <= support.maxBlockSize && all.indexOf(size) === i,
        );
        for (const dtype of caps.dtypes)
          for (const kind of caps.masks)
            for (const shape of PAGED_SHAPES)
              for (const blockSize of sizes) {
                const { paged } = randomPagedCase(
                  rand,
                  dtype,
                  { ...shape, headDim },
                  { blockSize, mask: maskOf(kind) },
                );
                await expectAccurate(
                  backend,
                  paged,
                  `${dtype} ${kind} block ${blockSize} ${JSON.stringify(shape)}`,
                );
              }
      },
    },
    {
      name: 'typed errors: bad input rejects with INVALID_INPUT naming the field, before any work',
      async run(backend) {
        const caps = backend.info.capabilities;
        const dtype = caps.dtypes[0]!;
        const shape = { batch: 2, seqQ: 3, seqK: 5, headsQ: 4, headsKV: 2, headDim: headDimsOf(caps)[0]! };
        const good = randomInput(rng(seed + 3), dtype, shape);
        const bad: [string, unknown, string][] = [
          ['null input', null, 'input'],
          ['short q', { ...good, q: good.q.subarray(1) }, 'q'],
          ['heads not dividing', { ...good, headsKV: 3 }, 'headsKV'],
          ['NaN scale', { ...good, scale: Number.NaN }, 'scale'],
          ['overflowing scale', { ...good, scale: 3e38 }, 'scale'],
          ['seqLensK above seqK', { ...good, seqLensK: Int32Array.of(5, 6) }, 'seqLensK[1]'],
          ['unknown mask', { ...good, mask: { kind: 'alibi' } }, 'mask.kind'],
          ['batch of 2^40', { ...good, batch: 2 ** 40 }, 'batch'],
          ['batch of 2^28 with short arrays', { ...good, batch: 2 ** 28 }, 'q'],
        ];
        for (const [label, input, field] of bad) {
          const t0 = performance.now();
          await expectRejection(backend.attention(input as AttentionInput), 'INVALID_INPUT', field, label);
          check(
            performance.now() - t0 < 50,
            `${label}: took ${(performance.now() - t0).toFixed(1)} ms to reject`,
          );
        }
      },
    },
    {
      name: 'abort: an aborted signal rejects with ABORTED; an abort mid-call settles it',
      async run(backend) {
        const caps = backend.info.capabilities;
        const input = randomInput(rng(seed + 4), caps.dtypes[0]!, {
          batch: 1,
          seqQ: 256,
          seqK: 256,
          headsQ: 4,
          headsKV: 4,
          headDim: headDimsOf(caps)[0]!,
        });
        const aborted = new AbortController();
        aborted.abort();
        await expectRejection(
          backend.attention(input, { signal: aborted.signal }),
          'ABORTED',
          undefined,
          'pre-aborted',
        );
        const late = new AbortController();
        const call = backend.attention(input, { signal: late.signal });
        late.abort();
        const error = await call.then(
          () => undefined,
          (e: unknown) => e,
        );
        check(
          error === undefined || (error instanceof FastAttentionError && error.code === 'ABORTED'),
          `mid-call abort: rejected with ${String(error)}, expected ABORTED or a result`,
        );
      },
    },
    {
      name: 'event loop: calls of growing size never block timers',
      async run(backend) {
        const caps = backend.info.capabilities;
        const rand = rng(seed + 5);
        const shape = (seq: number) => ({
          batch: 1,
          seqQ: seq,
          seqK: seq,
          headsQ: 8,
          headsKV: 8,
          headDim: headDimsOf(caps).at(-1)!,
        });
        await backend.attention(randomInput(rand, caps.dtypes[0]!, shape(16))); // starts workers, loads code
        // Grow the call until it takes a while (or gets large): whatever the backend's speed,
        // the check then covers real work, including two calls in flight together. A loaded
        // machine delays timers by itself, in bursts: each size gets three tries, each against
        // the idle stall measured just before it. A backend that blocks fails all three.
        for (let seq = 128; seq <= 2048; seq *= 2) {
          const input = randomInput(rand, caps.dtypes[0]!, shape(seq));
          const t0 = performance.now();
          const tries: string[] = [];
          for (let attempt = 0; attempt < EVENT_LOOP_TRIES; attempt++) {
            const idle = await worstTimerGap(() => new Promise((resolve) => setTimeout(resolve, 100)));
            const worst = await worstTimerGap(() =>
              Promise.all([backend.attention(input), backend.attention(input)]),
            );
            if (worst < maxGap + idle) break;
            tries.push(`${worst.toFixed(1)} ms (idle ${idle.toFixed(1)} ms)`);
          }
          check(
            tries.length < EVENT_LOOP_TRIES,
            `seq ${seq}: the event loop stalled in every try: ${tries.join(', ')}; limit ${maxGap} ms over idle`,
          );
          if (performance.now() - t0 > 200) break;
        }
      },
    },
    {
      name: 'concurrency: calls in flight together each get their own right answer',
      async run(backend) {
        const caps = backend.info.capabilities;
        const rand = rng(seed + 6);
        const inputs = [1, 2, 3, 4].map((b) =>
          randomInput(rand, caps.dtypes[0]!, {
            batch: b,
            seqQ: 9,
            seqK: 21,
            headsQ: 2,
            headsKV: 1,
            headDim: headDimsOf(caps)[0]!,
          }),
        );
        const results = await Promise.all(inputs.map((x) => backend.attention(x)));
        results.forEach(({ out, lse }, i) => {
          const errors = compareToReference(inputs[i]!, out, lse);
          check(withinTolerance(errors, inputs[i]!.dtype), `call ${i}: error ${errors.out.toExponential(2)}`);
        });
      },
    },
  ];
  return cases.filter(({ name }) => !options.skip?.some((s) => name.startsWith(s)));
}

/**
 * The dispose case needs its own backend: calls in flight settle, later calls reject DISPOSED,
 * and a second dispose() is harmless.
 */
export async function checkDispose(
  provider: BackendProvider,
  options: ConformanceOptions = {},
): Promise<void> {
  const backend = await provider.create(options.createOptions);
  const caps = backend.info.capabilities;
  const input = randomInput(rng(randomSeed()), caps.dtypes[0]!, {
    batch: 1,
    seqQ: 64,
    seqK: 64,
    headsQ: 2,
    headsKV: 2,
    headDim: headDimsOf(caps)[0]!,
  });
  const inFlight = backend.attention(input).then(
    () => 'resolved',
    (e: unknown) => (e instanceof FastAttentionError ? e.code : String(e)),
  );
  const disposing = backend.dispose();
  await expectRejection(backend.attention(input), 'DISPOSED', undefined, 'a call while dispose() runs');
  await disposing;
  const settled = await inFlight;
  check(
    ['resolved', 'DISPOSED', 'ABORTED'].includes(settled),
    `a call in flight at dispose() ended with ${settled}`,
  );
  await expectRejection(backend.attention(input), 'DISPOSED', undefined, 'a call after dispose()');
  await backend.dispose();
}

/** Runs every case against a fresh backend from `provider`; never throws for a failed case. */
export async function runConformance(
  provider: BackendProvider,
  options: ConformanceOptions = {},
): Promise<ConformanceResult[]> {
  const results: ConformanceResult[] = [];
  const record = async (name: string, run: () => Promise<void>) => {
    const t0 = performance.now();
    try {
      await run();
      results.push({ name, ok: true, ms: performance.now() - t0 });
    } catch (error) {
      results.push({
        name,
        ok: false,
        error: error instanceof Error ? error.message : String(error),
        ms: performance.now() - t0,
      });
    }
  };
  const backend = await provider.create(options.createOptions);
  try {
    for (const c of conformanceCases(options)) await record(c.name, () => c.run(backend));
  } finally {
    await backend.dispose();
  }
  const disposeCase = 'dispose: in-flight calls settle, later calls reject DISPOSED';
  if (!options.skip?.some((s) => disposeCase.startsWith(s))) {
    await record(disposeCase, () => checkDispose(provider, options));
  }
  return results;
}
