import { timeMedian } from '@fastattention/bench';
import {
  type AttentionInput,
  type AttentionOutput,
  type Backend,
  type DType,
  fromNumbers,
  type MaskSpec,
  resolveBackend,
  type StandardAttentionResult,
  standardAttention,
  toFloat64,
} from '@fastattention/core';
import Table from 'cli-table3';
import { discoverBackends } from '../backends.js';
import { formatBytes, formatMs, tableStyle } from '../format.js';

export interface DemoOptions {
  backend?: string;
  sizes: number[];
  heads: number;
  headDim: number;
  dtype: DType;
  mask: MaskSpec['kind'];
  repeat: number;
  threads?: number;
  json?: boolean;
}

export interface DemoRow {
  seq: number;
  backendMs: number;
  standardMs: number;
  speedup: number;
  backendBytes: number | undefined;
  standardBytes: number;
  relError: number;
}

function randomInput(seq: number, o: DemoOptions): AttentionInput {
  const n = seq * o.heads * o.headDim;
  // uniform in [-1, 1): never all zero, so every row has real work
  const values = () => Array.from({ length: n }, () => Math.random() * 2 - 1);
  return {
    dtype: o.dtype,
    batch: 1,
    seqQ: seq,
    seqK: seq,
    headsQ: o.heads,
    headsKV: o.heads,
    headDim: o.headDim,
    q: fromNumbers(values(), o.dtype),
    k: fromNumbers(values(), o.dtype),
    v: fromNumbers(values(), o.dtype),
    mask: o.mask === 'window' ? { kind: 'window', left: 128, right: 0 } : { kind: o.mask },
  } as AttentionInput;
}

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** Runs one size on the backend and on standard attention; checks they agree. */
export async function demoRow(backend: Backend, seq: number, o: DemoOptions): Promise<DemoRow> {
  const input = randomInput(seq, o);
  const timing = { repeat: o.repeat };
  let backendResult: AttentionOutput | undefined;
  const backendMs = await timeMedian(async () => {
    backendResult = await backend.attention(input);
  }, timing);
  let standardResult: StandardAttentionResult<DType> | undefined;
  const standardMs = await timeMedian(() => {
    standardResult = standardAttention(input);
  }, timing);
  const b = backendResult!;
  const s = standardResult!;
  return {
    seq,
    backendMs,
    standardMs,
    speedup: standardMs / backendMs,
    backendBytes: b.workspaceBytes === undefined ? undefined : b.workspaceBytes + b.out.byteLength,
    standardBytes: s.workspaceBytes + s.out.byteLength,
    relError: relativeError(toFloat64(b.out, o.dtype), toFloat64(s.out, o.dtype)),
  };
}

/** `fastattn demo`: the best available backend against standard attention, a table per size. */
export async function demoCommand(o: DemoOptions): Promise<void> {
  await discoverBackends();
  const backend = await resolveBackend({
    ...(o.backend ? { prefer: [o.backend], only: true } : {}),
    options: o.threads ? { threads: o.threads } : {},
  });
  try {
    const device = backend.info.devices[0];
    const log = o.json ? () => {} : console.log;
    log(
      `backend: ${backend.name}${device ? ` on ${device.name}` : ''}\n` +
        `problem: batch 1, ${o.heads} heads, head dim ${o.headDim}, ${o.dtype}, ${o.mask} mask; median of ${o.repeat} runs\n` +
        'standard attention: materialized scores, full mask and softmax in TypeScript (f32)\n',
    );
    const table = new Table({
      head: [
        'seq',
        `${backend.name} ms`,
        'standard ms',
        'speedup',
        `${backend.name} memory`,
        'standard memory',
        'rel. error',
      ],
      colAligns: ['right', 'right', 'right', 'right', 'right', 'right', 'right'],
      style: tableStyle(),
    });
    const progress = process.stderr.isTTY
      ? (text: string) => process.stderr.write(`${text.padEnd(40)}\r`)
      : () => {};
    const rows: DemoRow[] = [];
    for (const seq of o.sizes) {
      progress(`  running seq ${seq} ...`);
      const r = await demoRow(backend, seq, o);
      rows.push(r);
      table.push([
        r.seq,
        formatMs(r.backendMs),
        formatMs(r.standardMs),
        `${r.speedup.toFixed(1)}x`,
        formatBytes(r.backendBytes),
        formatBytes(r.standardBytes),
        r.relError.toExponential(1),
      ]);
    }
    progress('');
    if (o.json) {
      console.log(JSON.stringify({ backend: backend.name, device: device?.name, options: o, rows }, null, 2));
      return;
    }
    console.log(table.toString());
    console.log('memory: bytes allocated by the call besides its inputs (outputs included).');
  } finally {
    await backend.dispose();
  }
}
