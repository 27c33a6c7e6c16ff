/**
 * Watermark generation with bounded out-of-orderness (Flink's
 * `WatermarkStrategy.forBoundedOutOfOrderness`): watermark = max event time seen - bound - 1, so a
 * record exactly `bound` behind the maximum is still on time.
 */
export class BoundedOutOfOrderness {
  private maxTs = Number.NEGATIVE_INFINITY;
  private emitted = Number.NEGATIVE_INFINITY;

  /** @param boundMs the out-of-orderness bound in ms (0: strictly ascending within the bound of 1 ms) */
  constructor(readonly boundMs: number) {}

  /** Observes one record's event time (ms). */
  observe(ts: number): void {
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** Current watermark (ms), or -Infinity before the first record. */
  current(): number {
    return this.maxTs - this.boundMs - 1;
  }

  /** Returns the watermark if it advanced since the last call that returned one, else undefined. */
  advance(): number | undefined {
    const wm = this.current();
    if (wm > this.emitted && Number.isFinite(wm)) {
      this.emitted = wm;
      return wm;
    }
    return undefined;
  }
}
