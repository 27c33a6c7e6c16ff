/**
 * Delivery ledger of a Kafka read: per partition, how far the records handed to ingest cover the
 * log contiguously, so a bounded read can prove at its end that it delivered every offset in
 * [start, stop) of every partition before it reports success.
 *
 * Coverage, not a record count: a fetch returns a contiguous stretch of the log starting at the
 * fetch position, so offsets missing inside it (or between the fetch position and its first
 * record) are known to hold no deliverable record (compacted away, transaction markers, aborted
 * records), and are covered. Offsets between what was covered so far and a later fetch position
 * were never looked at: the consumer position jumped (a lost seek, an offset reset), and they are
 * recorded as lost. `verify()` then names them instead of letting the read end "successfully".
 *
 * Pure bookkeeping (no kafkajs), unit-tested in test/unit/kafka.test.ts.
 */

export interface LedgerRange {
  partition: number;
  /** First offset to deliver. */
  start: bigint;
  /** Exclusive stop offset; undefined for an unbounded read (never incomplete). */
  stop?: bigint;
}

interface Entry extends LedgerRange {
  /** Every offset in [start, next) was delivered or is known to hold no record. */
  next: bigint;
  records: number;
  /** Offset ranges [from, to) skipped without being fetched. */
  lost: [bigint, bigint][];
}

export class DeliveryLedger {
  private readonly parts = new Map<number, Entry>();

  constructor(ranges: Iterable<LedgerRange>) {
    for (const r of ranges) this.parts.set(r.partition, { ...r, next: r.start, records: 0, lost: [] });
  }

  /**
   * Records that `records` records covering offsets [from, to) of `partition` were handed to
   * ingest (`records` may be 0: offsets known to be empty). Overlap with what was covered before
   * (a re-fetch) is harmless; a `from` beyond the covered end is a hole, kept as lost.
   */
  cover(partition: number, from: bigint, to: bigint, records: number): void {
    const e = this.parts.get(partition);
    if (!e) throw new Error(`delivery ledger: partition ${partition} is not being read`);
    if (from > e.next) e.lost.push([e.next, from]);
    if (to > e.next) e.next = to;
    e.records += records;
  }

  /** The next offset not yet covered of `partition`. */
  next(partition: number): bigint | undefined {
    return this.parts.get(partition)?.next;
  }

  /**
   * Problems of a read that is about to end as complete: for each bounded partition, offsets in
   * [start, stop) that were not covered (the read stopped short) or were skipped. Empty when every
   * offset of every partition was delivered.
   */
  verify(): string[] {
    const problems: string[] = [];
    for (const e of [...this.parts.values()].sort((a, b) => a.partition - b.partition)) {
      if (e.stop === undefined) continue;
      const lost = e.lost.filter(([from]) => from < (e.stop as bigint));
      for (const [from, to] of lost) {
        const end = to < (e.stop as bigint) ? to : (e.stop as bigint);
        problems.push(`partition ${e.partition}: offsets ${from}..${end - 1n} were skipped, never delivered`);
      }
      if (e.next < e.stop)
        problems.push(
          `partition ${e.partition}: delivered up to offset ${e.next} of [${e.start}, ${e.stop}) ` +
            `(${e.records} records), offsets ${e.next}..${e.stop - 1n} missing`,
        );
    }
    return problems;
  }
}
