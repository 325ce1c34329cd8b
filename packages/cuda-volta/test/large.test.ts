// A decode problem whose K and V hold 2^33 elements each (B=64, seqK=128K, 8 KV heads, hd 128:
// 16 GiB apiece), generated on the device. Any 32-bit element or byte offset in the kernels, the
// combine kernel or the launch would send the last batch rows to the wrong keys. The last batch
// row is checked twice without downloading the 32 GiB: its K/V/Q are copied on the device into a
// batch-1 problem (DeviceTensor.copyFrom), which runs through the same kernels (its offsets are
// small) and must agree with the big run's last row; and the big run's last row is checked against
// the float64 reference on its last KV head.
import { compareToReference } from '@fastattention/core/testing';
import { describe, expect, it } from 'vitest';
import { TOL, tryBackend } from './helpers.js';

const { backend, reason } = await tryBackend();
const B = 64;
const SEQ_K = 131072;
const HQ = 32;
const HKV = 8;
const D = 128;
const kvRow = SEQ_K * HKV * D; // elements of one batch row of K or V (2^27)
const need = 2 * B * kvRow * 2 + (1 << 30); // K + V in f16, plus 1 GiB for the rest
const free = backend ? backend.memInfo().free : 0;
const skip = !backend
  ? `no GPU (${reason})`
  : free < need
    ? `${(free / 2 ** 30).toFixed(1)} GiB free on the device, ${(need / 2 ** 30).toFixed(1)} GiB needed`
    : undefined;
if (skip) console.warn(`[cuda] large-problem test skipped: ${skip}`);

const halfToFloat = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
};

describe.skipIf(skip !== undefined)('2^33-element decode (64-bit offsets)', () => {
  it('the last batch row of B=64, seqK=128K, 32/8 heads, hd 128 matches the same row run alone', async () => {
    const b = backend!;
    const dtype = 'f16' as const;
    const q = await b.random(dtype, [B, 1, HQ, D], 101);
    const k = await b.random(dtype, [B, SEQ_K, HKV, D], 102);
    const v = await b.random(dtype, [B, SEQ_K, HKV, D], 103);
    expect(k.length).toBe(2 ** 33);
    const out = b.empty(dtype, [B, 1, HQ, D]);
    const lse = b.empty('f32', [B, HQ, 1]);
    const q1 = b.empty(dtype, [1, 1, HQ, D]);
    const k1 = b.empty(dtype, [1, SEQ_K, HKV, D]);
    const v1 = b.empty(dtype, [1, SEQ_K, HKV, D]);
    try {
      await out.fillBytes(0xff);
      await lse.fillBytes(0xff);
      const shape = { batch: B, seqQ: 1, seqK: SEQ_K, headsQ: HQ, headsKV: HKV, headDim: D };
      await b.attentionDevice({ dtype, ...shape, q, k, v, out, lse });
      const last = B - 1;
      // The last row of the big problem, copied on the device (offsets past 2^32 elements).
      await q1.copyFrom(q, { srcOffset: last * HQ * D, count: HQ * D });
      await k1.copyFrom(k, { srcOffset: last * kvRow, count: kvRow });
      await v1.copyFrom(v, { srcOffset: last * kvRow, count: kvRow });
      // A last-row slice of the big output, copied out the same way (no 32 GiB download).
      const outLast = b.empty(dtype, [1, 1, HQ, D]);
      const lseLast = b.empty('f32', [1, HQ, 1]);
      await outLast.copyFrom(out, { srcOffset: last * HQ * D, count: HQ * D });
      await lseLast.copyFrom(lse, { srcOffset: last * HQ, count: HQ });
      const big = (await outLast.download()) as Uint16Array;
      const bigLse = (await lseLast.download()) as Float32Array;
      outLast.dispose();
      lseLast.dispose();
      // Dispose the 32 GiB before the batch-1 run and the host reference.
      for (const t of [q, k, v, out, lse]) t.dispose();

      const one = await b.attentionDevice({ dtype, ...shape, batch: 1, q: q1, k: k1, v: v1 });
      const small = (await one.out.download()) as Uint16Array;
      const smallLse = (await one.lse.download()) as Float32Array;
      one.out.dispose();
      one.lse.dispose();
      // Same data, same kernels; only the split-KV partition differs (B=1 splits the keys), so the
      // two agree to f16 rounding of the output, not bit for bit.
      let num = 0;
      let den = 0;
      let maxUlp = 0;
      for (let i = 0; i < small.length; i++) {
        const x = halfToFloat(big[i]!);
        const y = halfToFloat(small[i]!);
        expect(Number.isFinite(x)).toBe(true);
        num += (x - y) ** 2;
        den += y * y;
        maxUlp = Math.max(maxUlp, Math.abs(big[i]! - small[i]!));
      }
      const rel = Math.sqrt(num / den);
      let lseErr = 0;
      for (let i = 0; i < HQ; i++)
        lseErr = Math.max(lseErr, Math.abs(bigLse[i]! - smallLse[i]!) / Math.abs(smallLse[i]!));
      console.log(
        `[cuda] 2^33-element decode, last row vs batch-1 run: rel ${rel.toExponential(2)}, max ${maxUlp} f16 ulp, lse ${lseErr.toExponential(2)}`,
      );
      expect(rel).toBeLessThan(1e-3);
      expect(lseErr).toBeLessThan(1e-5);

      // The last KV head of that row (query heads 28..31, the highest offsets) against the float64
      // reference: gathered on the host into a 1-KV-head problem (a quarter of a second of
      // reference work instead of eight times that for all 32 heads).
      const [hq, hk, hv] = (await Promise.all([
        q1.download(),
        k1.download(),
        v1.download(),
      ])) as Uint16Array[];
      const G = HQ / HKV;
      const kvh = HKV - 1;
      const sk = new Uint16Array(SEQ_K * D);
      const sv = new Uint16Array(SEQ_K * D);
      for (let j = 0; j < SEQ_K; j++) {
        const from = (j * HKV + kvh) * D;
        sk.set(hk!.subarray(from, from + D), j * D);
        sv.set(hv!.subarray(from, from + D), j * D);
      }
      const sq = hq!.slice(kvh * G * D, (kvh + 1) * G * D);
      const errors = compareToReference(
        { dtype, ...shape, batch: 1, headsQ: G, headsKV: 1, q: sq, k: sk, v: sv },
        big.slice(kvh * G * D, (kvh + 1) * G * D),
        bigLse.slice(kvh * G, (kvh + 1) * G),
      );
      console.log(
        `[cuda] 2^33-element decode, last row (KV head ${kvh}) vs float64 reference: ${JSON.stringify(errors)}`,
      );
      expect(errors.bad).toBe(0);
      expect(errors.out).toBeLessThan(TOL.f16);
      expect(errors.lse).toBeLessThan(TOL.lse);
    } finally {
      for (const t of [q, k, v, out, lse, q1, k1, v1]) t.dispose();
    }
  });
});
