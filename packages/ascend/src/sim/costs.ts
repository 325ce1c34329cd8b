import { type PipeNumbers, pipeNumbers } from '../device/pipes.js';
import type { AscendDevice } from '../device/presets.js';

/**
 * Where a GM access is served. Every GM access passes through L2; `hbm` ones also miss it. The
 * kernels decide per tensor: workspace hand-offs (S, P, O partials of FastAttention) are small and
 * stay in L2; Q/O and the first touch of K/V come from HBM; standard attention's S x S matrices
 * spill to HBM once they no longer fit L2.
 */
export type GmClass = 'hbm' | 'l2';

/**
 * Instruction durations on one core group, and the GM bytes moved (for the chip-level bandwidth
 * floor). A core's GM transfers get the smaller of the pipe's port limit and its fair share of the
 * chip bandwidth (L2 or HBM) among the cores that are busy; since several pipes of one core may
 * stream at once, the report also checks the whole run against chip bandwidth (`bandwidthFloor`).
 */
export class CostModel {
  readonly p: PipeNumbers;
  readonly syncCycles: number;
  readonly gmLatency: number;
  /** L2 capacity: decides which tensors stay cached. */
  readonly l2Bytes: number;
  readonly #share: Record<GmClass, number>;
  readonly #chip: Record<GmClass, number>;
  /** GM bytes moved, by class (hbm bytes are also counted as l2 bytes). */
  readonly bytes: Record<GmClass, number> = { hbm: 0, l2: 0 };

  constructor(device: AscendDevice, activeCores: number) {
    this.p = pipeNumbers(device.pipes);
    this.syncCycles = device.syncCycles.value;
    this.gmLatency = this.p.gmLatency;
    this.l2Bytes = device.l2Bytes.value;
    const clock = device.clockHz.value;
    this.#chip = { hbm: device.hbmBandwidth.value / clock, l2: device.l2Bandwidth.value / clock };
    const cores = Math.max(1, activeCores);
    this.#share = { hbm: this.#chip.hbm / cores, l2: this.#chip.l2 / cores };
  }

  /** Chip-wide bytes per cycle of each class. */
  chipBytesPerCycle(cls: GmClass): number {
    return this.#chip[cls];
  }

  /** Cube instruction computing an m x n result over a reduction of k: 16x16x16 fractals. */
  cube(m: number, n: number, k: number): number {
    const fractals = Math.ceil(m / 16) * Math.ceil(n / 16) * Math.ceil(k / 16);
    return this.p.cubeIssue + fractals / this.p.cubeFractalsPerCycle;
  }

  /** L1 -> L0A/L0B. */
  mte1(bytes: number): number {
    return this.p.dmaIssue + bytes / this.p.mte1BytesPerCycle;
  }

  /** GM -> L1/UB on MTE2. The data lands `gmLatency` cycles after the returned occupancy. */
  gmRead(bytes: number, cls: GmClass): number {
    this.#count(bytes, cls);
    return this.p.dmaIssue + bytes / Math.min(this.p.mte2BytesPerCycle, this.#share[cls]);
  }

  /** UB -> GM (MTE3) or L0C -> GM (FixPipe). */
  gmWrite(bytes: number, cls: GmClass, port: 'MTE3' | 'FixPipe'): number {
    this.#count(bytes, cls);
    const peak = port === 'MTE3' ? this.p.mte3BytesPerCycle : this.p.fixpipeBytesPerCycle;
    return this.p.dmaIssue + bytes / Math.min(peak, this.#share[cls]);
  }

  /** `instructions` vector instructions making `passes` simple passes over `elements` f32 values. */
  vector(elements: number, passes: number, instructions: number): number {
    return instructions * this.p.vectorIssue + (elements * passes) / this.p.vectorF32PerCycle;
  }

  /** Compulsory HBM traffic that the per-transfer classes do not show (first touch of cached data). */
  addCompulsory(bytes: number): void {
    this.bytes.hbm += bytes;
  }

  /** Cycles the chip needs at least to move what was moved: the roofline of the memory system. */
  bandwidthFloor(): { hbm: number; l2: number } {
    return { hbm: this.bytes.hbm / this.#chip.hbm, l2: this.bytes.l2 / this.#chip.l2 };
  }

  #count(bytes: number, cls: GmClass): void {
    this.bytes.l2 += bytes;
    if (cls === 'hbm') this.bytes.hbm += bytes;
  }
}
