/**
 * The replay plan (pure, no I/O): the time partitions of every archive source cut into one
 * timeline of epochs, oldest first, with the watermark that follows each epoch.
 *
 * - An epoch is a maximal group of overlapping partitions of all sources (interval merging over
 *   [start, end)). Sources of one granularity give one epoch per partition; a daily source beside
 *   an hourly one gives one epoch per day holding the day and its 24 hours, so progress is paced by
 *   the coarser partition (Uber's Kappa+ lockstep; research/anchors.md §2).
 * - Every record of an epoch is emitted before any record of the next one.
 * - The watermark after epoch i is `min(end of epoch i−N, min event time of any file in a later
 *   epoch) − 1 ms`, N being `--extra-partitions`: with N = 0 it is the epoch's end − 1 ms; a file
 *   whose Delta statistics say it holds rows before its partition holds the watermark back (Iceberg's
 *   ColumnStatsWatermarkExtractor, apache/iceberg#8553); N > 0 lets records that landed up to N
 *   partitions late (forward skew) still be on time, and reads N epochs after `--to`.
 */

/** One data file of a partition. */
export interface PlanFile {
  uri: string;
  /** Bytes. */
  size: number;
  /** Smallest event time in the file (epoch ms), from Delta `add.stats` minValues, if known. */
  minTs?: number;
  /** Largest event time in the file (epoch ms), from Delta `add.stats` maxValues, if known. */
  maxTs?: number;
  /** Partition values that become record fields (non-time partition columns). */
  fields: Record<string, string>;
}

/** One time partition of one source: [start, end) in epoch ms, its path and files (sorted by uri). */
export interface PlanPartition {
  /** Index of the source (argument order). */
  source: number;
  start: number;
  end: number;
  /** Relative directory, e.g. `dt=2024-01-01/hr=05`. */
  path: string;
  files: PlanFile[];
}

/** One step of the lockstep timeline. */
export interface Epoch {
  /** Start and end (exclusive) of the union of its partitions, epoch ms. */
  start: number;
  end: number;
  /** True for the `--extra-partitions` epochs after `--to`. */
  extra: boolean;
  /** Its partitions, by source then start. */
  parts: PlanPartition[];
  /** The watermark emitted after the epoch (ms); -Infinity: none. */
  watermark: number;
}

/** What to plan: the time range and the number of extra epochs after it. */
export interface PlanRange {
  /** Inclusive start, epoch ms (-Infinity: from the oldest partition). */
  from: number;
  /** Exclusive end, epoch ms (+Infinity: to the newest partition). */
  to: number;
  /** `--extra-partitions`: epochs after `to` that are read too (records before `to` only). */
  extra: number;
}

/**
 * Cuts the partitions of all sources into epochs (see the module comment) and computes the
 * watermark after each. Partitions ending at or before `from` are left out; epochs starting before
 * `to` are the range, then up to `extra` epochs more.
 * @param parts every partition of every source, in any order
 */
export function planEpochs(parts: readonly PlanPartition[], range: PlanRange): Epoch[] {
  const live = parts
    .filter((p) => p.end > range.from)
    .sort((a, b) => a.start - b.start || a.source - b.source || a.end - b.end);
  const groups: Epoch[] = [];
  for (const p of live) {
    const g = groups[groups.length - 1];
    if (g && p.start < g.end) {
      g.parts.push(p);
      if (p.end > g.end) g.end = p.end;
    } else groups.push({ start: p.start, end: p.end, extra: false, parts: [p], watermark: -Infinity });
  }
  const inRange = groups.filter((g) => g.start < range.to);
  const extra = groups.filter((g) => g.start >= range.to).slice(0, range.extra);
  for (const g of extra) g.extra = true;
  const epochs = [...inRange, ...extra];
  for (const e of epochs) e.parts.sort((a, b) => a.source - b.source || a.start - b.start);
  // Suffix minimum of the files' known minimum event times: what a later epoch may still emit.
  const laterMin: number[] = new Array(epochs.length).fill(Number.POSITIVE_INFINITY);
  for (let i = epochs.length - 2; i >= 0; i--) {
    let m = laterMin[i + 1];
    for (const p of epochs[i + 1].parts)
      for (const f of p.files) if (f.minTs !== undefined) m = Math.min(m, Math.max(f.minTs, range.from)); // rows < from are not emitted
    laterMin[i] = m;
  }
  let last = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < epochs.length; i++) {
    const lagged = i - range.extra >= 0 ? epochs[i - range.extra].end : Number.NEGATIVE_INFINITY;
    const wm = Math.min(lagged, laterMin[i]) - 1;
    // Watermarks never go back (a later epoch cannot lower what was emitted).
    last = Math.max(last, wm);
    epochs[i].watermark = last;
  }
  return epochs;
}

/**
 * True when a record with event time `ts` is emitted: inside [from, to). (Records of the range
 * partitions outside it belong to a neighbouring run; `--extra-partitions` reads them from there.)
 */
export function inRange(ts: number, range: PlanRange): boolean {
  return ts >= range.from && ts < range.to;
}
