/**
 * HyperLogLog distinct-count sketch (Flajolet, Fusy, Gandouet, Meunier 2007, "HyperLogLog: the
 * analysis of a near-optimal cardinality estimation algorithm", figure 3, with its small-range
 * (linear counting) and large-range corrections), over the 32-bit MurmurHash3 of the value's text
 * (`murmurhash` package).
 *
 * Why not bloom-filters' HyperLogLog: measured with bloom-filters 3.0.4, 100 distinct values
 * estimate as 48 with 1024 registers: it stores rho - 1 instead of rho, so every value whose hash
 * starts with a 1 bit leaves its register at 0 and the small-range correction undercounts by half.
 *
 * Registers are a Uint8Array, serialised as base64; two sketches of the same size merge by
 * register-wise maximum.
 */
import { murmur3 } from '../../state/keygroup.js';

export class HyperLogLog {
  readonly registers: Uint8Array;
  private readonly p: number;

  /** @param m number of registers, a power of two from 16 to 65536 (standard error 1.04/sqrt(m)) */
  constructor(readonly m: number) {
    if (m < 16 || m > 65536 || (m & (m - 1)) !== 0)
      throw new RangeError('HLL size must be a power of two, 16..65536');
    this.p = Math.log2(m);
    this.registers = new Uint8Array(m);
  }

  /** Adds a value (by its string form). */
  add(s: string): void {
    const h = murmur3()(Buffer.from(s, 'utf8'), 0x9747b28c) >>> 0;
    const idx = h >>> (32 - this.p);
    const w = (h << this.p) >>> 0;
    // rho: position of the leftmost 1-bit in the remaining 32-p bits (1-based); 32-p+1 if none.
    const rho = w === 0 ? 32 - this.p + 1 : Math.clz32(w) + 1;
    if (rho > this.registers[idx]) this.registers[idx] = rho;
  }

  /** Estimated number of distinct values added. */
  count(): number {
    const m = this.m;
    const alpha = m === 16 ? 0.673 : m === 32 ? 0.697 : m === 64 ? 0.709 : 0.7213 / (1 + 1.079 / m);
    let z = 0;
    let zeros = 0;
    for (let i = 0; i < m; i++) {
      const r = this.registers[i];
      z += 2 ** -r;
      if (r === 0) zeros++;
    }
    let e = (alpha * m * m) / z;
    if (e <= 2.5 * m && zeros > 0) e = m * Math.log(m / zeros);
    else if (e > 2 ** 32 / 30) e = -(2 ** 32) * Math.log(1 - e / 2 ** 32);
    return Math.round(e);
  }

  /** Register-wise maximum with another sketch of the same size (in place). */
  merge(o: HyperLogLog): this {
    for (let i = 0; i < this.m; i++)
      if (o.registers[i] > this.registers[i]) this.registers[i] = o.registers[i];
    return this;
  }

  toBase64(): string {
    return Buffer.from(this.registers.buffer, this.registers.byteOffset, this.m).toString('base64');
  }

  static fromBase64(m: number, s: string): HyperLogLog {
    const h = new HyperLogLog(m);
    h.registers.set(Buffer.from(s, 'base64'));
    return h;
  }
}
