/**
 * Watermark generation with bounded out-of-orderness (Flink's
 * `WatermarkStrategy.forBoundedOutOfOrderness`): watermark = max event time seen - bound - 1, so a
 * record exactly `bound` behind the maximum is still on time.
 */
export class BoundedOutOfOrderness {
  private maxTs = Number.NEGATIVE_INFINITY;
  private emitted = Number.NEGATIVE_INFINITY;
  /** An explicit watermark set by the source (`raiseTo`); the watermark is never below it. */
  private floor = Number.NEGATIVE_INFINITY;

  /**
   * @param boundMs the out-of-orderness bound in ms (0: Flink's forMonotonousTimestamps);
   *   `Infinity`: no watermark at all (batch semantics: the end of input is the only watermark)
   */
  constructor(readonly boundMs: number) {}

  /** Observes one record's event time (ms). */
  observe(ts: number): void {
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** Current watermark (ms), or -Infinity before the first record (always, with an infinite bound). */
  current(): number {
    return Math.max(this.maxTs - this.boundMs - 1, this.floor);
  }

  /**
   * Raises the watermark to at least `wm` (ms): an explicit watermark from a source that knows no
   * later record is at or below it (replay: a partition's end − 1 ms). Never lowers it.
   */
  raiseTo(wm: number): void {
    if (wm > this.floor) this.floor = wm;
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

/**
 * Per-split watermarks (one per Kafka partition, or one for all files) combined as their minimum,
 * as Flink does across source splits. A split that has seen no record yet holds the combined
 * watermark back only once it is known (`addSplit`); unknown splits appear on their first record.
 */
export class SplitWatermarks {
  readonly splits = new Map<string, BoundedOutOfOrderness>();
  private emitted = Number.NEGATIVE_INFINITY;
  /** Splits excluded from the minimum: idle (no data for a while) or finished. */
  private idle: ReadonlySet<string> = new Set();

  /** @param boundMs out-of-orderness bound of every split (ms); `Infinity`: never a watermark */
  constructor(readonly boundMs: number) {}

  /** Declares a split before its first record (so it holds the watermark back). */
  addSplit(split: string): void {
    if (!this.splits.has(split)) this.splits.set(split, new BoundedOutOfOrderness(this.boundMs));
  }

  observe(split: string, ts: number): void {
    let g = this.splits.get(split);
    if (!g) {
      g = new BoundedOutOfOrderness(this.boundMs);
      this.splits.set(split, g);
    }
    g.observe(ts);
  }

  /** Raises one split's watermark to at least `wm` (ms; see BoundedOutOfOrderness.raiseTo). */
  raiseTo(split: string, wm: number): void {
    this.addSplit(split);
    this.splits.get(split)?.raiseTo(wm);
  }

  /** Current watermark of each split (ms; -Infinity before its first record). */
  perSplit(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [k, g] of this.splits) m.set(k, g.current());
    return m;
  }

  /**
   * Marks which splits are idle (Flink's `withIdleness`): idle splits do not hold the combined
   * watermark back; every other split is active. A split becomes active again by being left out of
   * a later call. When every split is idle the watermark does not advance.
   */
  setIdle(idle: ReadonlySet<string>): void {
    this.idle = idle;
  }

  /** The minimum over active splits if it advanced since the last call that returned one, else undefined. */
  advance(): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    for (const [k, g] of this.splits) if (!this.idle.has(k)) min = Math.min(min, g.current());
    if (Number.isFinite(min) && min > this.emitted) {
      this.emitted = min;
      return min;
    }
    return undefined;
  }

  /** The last emitted watermark (ms). */
  current(): number {
    return this.emitted;
  }
}
