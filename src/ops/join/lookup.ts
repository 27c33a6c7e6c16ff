/**
 * Lookup join (`kappa join --lookup`): the right side is a finite table, loaded once into memory
 * and indexed by the join key; every left record is joined with the table rows of its key as it
 * arrives (no time condition, no state to clean: Flink's lookup join, a SQL hash join whose build
 * side is the table). Types inner and left. Result: ts and key of the left record, value = left and
 * table fields merged (fields.ts `Merger`). Watermarks pass through unchanged (nothing is held).
 *
 * A one-input operator (src/ops/operator.ts): the runtime is `runOperator`. Version-2 input takes
 * the columnar path (`batch`): with a single string key field, the table is probed once per
 * distinct key of the batch (its dictionary), not once per row.
 */
import type { RecordBatch } from '../../stream/batch.js';
import type { Header, Rec, Schema } from '../../stream/protocol.js';
import type { BadRow, Collector, Operator } from '../operator.js';
import { type JoinKeySpec, keyExtractor, Merger } from './fields.js';

/** Lookup join options. `rows` are the table's row values (objects), in table order. */
export interface LookupJoinOptions {
  on: JoinKeySpec;
  type: 'inner' | 'left';
  rows: readonly unknown[];
  /** The table's schema, if known (for null padding and the output schema). */
  schema?: Schema;
  suffix?: string;
}

/** Lookup join over an in-memory table (see the module comment). */
export class LookupJoinOperator implements Operator {
  private readonly index = new Map<string, unknown[]>();
  private readonly leftKey: (v: unknown) => string | undefined;
  private merger: Merger | undefined;
  private sinceDrain = 0;
  private fields: string[] | undefined;
  readonly stats = { in: 0, joined: 0, padded: 0, tableRows: 0, tableKeys: 0 };

  constructor(private readonly o: LookupJoinOptions) {
    this.leftKey = keyExtractor(o.on.left);
    const rightKey = keyExtractor(o.on.right);
    for (const v of o.rows) {
      const k = rightKey(v);
      if (k === undefined) continue; // never matches
      const l = this.index.get(k);
      if (l) l.push(v);
      else this.index.set(k, [v]);
    }
    if (!o.schema) {
      // No schema (CSV, NDJSON): the union of the table's field names pads unmatched rows.
      const names = new Set<string>();
      for (const v of o.rows)
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const f in v) names.add(f);
      this.fields = [...names];
    }
    this.stats.tableRows = o.rows.length;
    this.stats.tableKeys = this.index.size;
  }

  open(h: Header): Header {
    this.merger = new Merger(h.schema, this.o.schema, this.o.suffix ?? '_right', this.fields);
    const out: Header = { kappa: h.kappa };
    const s = this.merger.schema(h.schema);
    if (s) out.schema = s;
    if (h.pipeline) out.pipeline = h.pipeline;
    return out;
  }

  private emitFor(r: Rec, matches: unknown[] | undefined, out: Collector): void | Promise<void> {
    const m = this.merger!;
    const key = r.key ?? null;
    if (matches === undefined) {
      if (this.o.type !== 'left') return;
      this.stats.padded++;
      out.record({ ts: r.ts, key, value: m.padLeft(r.value) });
      this.sinceDrain++;
    } else {
      for (const v of matches) out.record({ ts: r.ts, key, value: m.merge(r.value, v) });
      this.stats.joined += matches.length;
      this.sinceDrain += matches.length;
    }
    if (this.sinceDrain >= 2048) {
      this.sinceDrain = 0;
      return out.drain?.();
    }
  }

  record(r: Rec, out: Collector): void | Promise<void> {
    this.stats.in++;
    const k = this.leftKey(r.value);
    return this.emitFor(r, k === undefined ? undefined : this.index.get(k), out);
  }

  async batch(b: RecordBatch, out: Collector, _bad: BadRow): Promise<void> {
    const keyCol = this.o.on.left.length === 1 ? b.column(this.o.on.left[0]) : undefined;
    const dict = keyCol?.dictionary();
    const recAt = (i: number): Rec =>
      b.rec ? b.rec(i) : { ts: b.ts[i], key: b.key.get(i) as string | null, value: b.value(i) };
    if (dict === undefined) {
      for (let i = 0; i < b.length; i++) {
        const p = this.record(recAt(i), out);
        if (p) await p;
      }
      return;
    }
    // One probe per distinct key of the batch (dictionary code), not per row.
    const probes: (unknown[] | undefined | null)[] = new Array(dict.values.length).fill(null);
    for (let i = 0; i < b.length; i++) {
      this.stats.in++;
      const c = dict.codes[i];
      let matches: unknown[] | undefined;
      if (c >= 0) {
        let p = probes[c];
        if (p === null) {
          p = this.index.get(JSON.stringify(dict.values[c]));
          probes[c] = p;
        }
        matches = p;
      }
      if (matches === undefined && this.o.type === 'inner') continue;
      const p = this.emitFor(recAt(i), matches, out);
      if (p) await p;
    }
  }

  watermark(wm: number, out: Collector): void {
    out.watermark(wm);
  }

  end(): void {}

  counters(): Record<string, number> {
    return {
      'table rows': this.stats.tableRows,
      'table keys': this.stats.tableKeys,
      joined: this.stats.joined,
      padded: this.stats.padded,
    };
  }
}
