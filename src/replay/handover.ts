/**
 * `kappa replay … --then kafka://HOST/topic`: the archive, then the live topic, as one record
 * source (FLIP-150's HybridSource: the switch happens once the whole archive was emitted).
 *
 * Where the topic starts (research/anchors.md §2):
 * - exact: the table's Delta commits record the next offset per topic partition they hold
 *   (commitInfo `kappa.kafkaOffsets`, max over the commits up to the version replayed); the topic
 *   starts exactly there, partitions the table never saw at their earliest offset. No gap, no
 *   duplicate.
 * - fallback (no offsets recorded for this topic): Kafka's offset lookup by timestamp at the
 *   largest event time replayed minus `--overlap`, and records whose (partition, offset) the
 *   archive already held are dropped, the archive's offsets read from the value fields named by
 *   `--offset-fields PARTITION,OFFSET` (a record is dropped when its offset is at or below the
 *   largest offset the archive held for its partition). Not exact: a record whose Kafka timestamp
 *   is more than the overlap below its event time is skipped (a gap), and without
 *   `--offset-fields` the overlap is emitted twice.
 *
 * The archive's split (`replay`) stops holding the watermark back after the hand-over; the topic's
 * partitions are declared then (a batch per partition with no rows and watermark -Infinity), so a
 * partition that has not yet delivered holds the watermark back as in `kappa ingest`. Kafka rows
 * get their event time from the archive's event-time field, so archive and topic agree.
 */
import type { RecordSource, SourcePosition } from '../connectors/source.js';
import type { RowBatch } from '../formats/format.js';
import { makeAssigner } from '../ops/assign.js';
import type { TsFormat } from '../time/timestamp.js';
import { isoUtc } from '../time/timestamp.js';
import type { KafkaOffsets } from './archive.js';
import { REPLAY_SPLIT, type ReplaySource } from './source.js';

/** How the hand-over starts the topic. */
export type HandoverStart =
  | { kind: 'offsets'; offsets: Record<string, string> }
  | { kind: 'time'; overlapMs: number; offsetFields?: [string, string] };

/** What `HandoverSource` needs. */
export interface HandoverSpec {
  replay: ReplaySource;
  topic: string;
  start: HandoverStart;
  /** Opens the topic from a `--from` position text (`p:o,…` or an ISO time). */
  openTopic: (from: string) => Promise<RecordSource>;
  /** Event-time field and format for topic rows (the archive's). */
  tsField: string;
  tsFormat: TsFormat;
  tz: string;
  /** Tells the user how the topic was started (one line). */
  note: (message: string) => void;
}

/**
 * The start of the topic from the archive's recorded offsets, or undefined when the table records
 * none for `topic`.
 */
export function recordedStart(
  offsets: KafkaOffsets | undefined,
  topic: string,
): Record<string, string> | undefined {
  const t = offsets?.[topic];
  return t && Object.keys(t).length > 0 ? t : undefined;
}

/** The `--from` text of an offset map: `p:o,…` sorted by partition. */
export function offsetsText(offsets: Record<string, string>): string {
  return Object.entries(offsets)
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([p, o]) => `${p}:${o}`)
    .join(',');
}

/** The archive followed by the topic (see the module comment). */
export class HandoverSource implements RecordSource {
  readonly progressUnit = 'rows' as const;
  /** Topic partitions: log order is event-time order (as `kappa ingest kafka://`). */
  readonly defaultMaxOutOfOrdernessMs = 0;
  readonly schema;
  private topic: RecordSource | undefined;
  private archiveDone = false;
  private maxTs = Number.NEGATIVE_INFINITY;
  /** Largest archived offset per Kafka partition (fallback de-duplication). */
  private readonly held = new Map<number, bigint>();
  /** Topic records dropped as already archived. */
  duplicates = 0;

  constructor(private readonly spec: HandoverSpec) {
    this.schema = spec.replay.schema;
  }

  position(): SourcePosition {
    return {
      kind: 'replay-then-kafka',
      archive: this.spec.replay.position(),
      kafka: this.topic?.position?.() ?? null,
    };
  }

  detail(): string {
    return this.archiveDone ? (this.topic?.detail?.() ?? 'kafka') : this.spec.replay.detail();
  }

  idleSplits(): ReadonlySet<string> {
    if (!this.archiveDone) return new Set();
    return new Set([REPLAY_SPLIT, ...(this.topic?.idleSplits?.() ?? [])]);
  }

  onWatermarks(perSplit: ReadonlyMap<string, number>, emitted: number): void {
    this.topic?.onWatermarks?.(perSplit, emitted);
  }

  async *batches(): AsyncGenerator<RowBatch> {
    const s = this.spec;
    const [pf, of] = s.start.kind === 'time' && s.start.offsetFields ? s.start.offsetFields : [];
    for await (const b of s.replay.batches()) {
      for (let i = 0; i < b.rows.length; i++) {
        const t = b.nativeTs?.(i);
        if (t !== undefined && t > this.maxTs) this.maxTs = t;
        const row = b.rows[i];
        if (pf !== undefined && of !== undefined && row) {
          const p = Number(row[pf]);
          const o = row[of];
          if (
            Number.isInteger(p) &&
            (typeof o === 'number' || typeof o === 'string') &&
            /^\d+$/.test(String(o))
          ) {
            const off = BigInt(o);
            const h = this.held.get(p);
            if (h === undefined || off > h) this.held.set(p, off);
          }
        }
      }
      yield b;
    }
    let from: string;
    if (s.start.kind === 'offsets') {
      from = offsetsText(s.start.offsets);
      s.note(`archive done; ${s.topic} starts at the offsets the table recorded (${from}): exact hand-over`);
    } else {
      const at = Number.isFinite(this.maxTs) ? this.maxTs - s.start.overlapMs : 0;
      from = isoUtc(Math.max(0, at));
      s.note(
        `archive done; the table records no offsets of ${s.topic}: ${s.topic} starts at its records from ${from} (largest event time replayed minus --overlap)${s.start.offsetFields ? ', minus those the archive held' : '; without --offset-fields the overlap may be emitted twice'}: not exact`,
      );
    }
    this.topic = await s.openTopic(from);
    this.archiveDone = true;
    for (const sp of this.topic.splits?.() ?? [])
      yield {
        rows: [],
        where: () => ({ source: this.spec.topic }),
        raw: () => '',
        split: sp,
        watermark: Number.NEGATIVE_INFINITY,
      };
    const assign = makeAssigner({ tsField: s.tsField, tsFormat: s.tsFormat, tz: s.tz });
    for await (const b of this.topic.batches()) yield this.retime(b, assign);
  }

  /** A topic batch with the archive's event time and without the rows the archive already held. */
  private retime(b: RowBatch, assign: ReturnType<typeof makeAssigner>): RowBatch {
    const keep: number[] = [];
    for (let i = 0; i < b.rows.length; i++) {
      const pr = b.prov?.(i);
      if (this.held.size > 0 && pr?.partition !== undefined && pr.offset !== undefined) {
        const h = this.held.get(pr.partition);
        if (h !== undefined && BigInt(pr.offset) <= h) {
          this.duplicates++;
          continue;
        }
      }
      keep.push(i);
    }
    const rows = keep.map((i) => b.rows[i]);
    const ts = rows.map((r) => {
      if (!r) return undefined;
      const a = assign(r);
      return 'error' in a ? undefined : a.ts;
    });
    return {
      rows,
      errors: b.errors
        ? new Map(keep.filter((i) => b.errors?.has(i)).map((i) => [keep.indexOf(i), b.errors!.get(i)!]))
        : undefined,
      where: (j) => b.where(keep[j]),
      raw: (j) => b.raw(keep[j]),
      rawIsJson: b.rawIsJson,
      bigIntegers: b.bigIntegers,
      bytesDone: b.bytesDone,
      split: b.split,
      nativeTs: (j) => ts[j],
      nativeKey: b.nativeKey ? (j) => b.nativeKey!(keep[j]) : undefined,
      prov: b.prov ? (j) => b.prov!(keep[j]) : undefined,
      headers: b.headers ? (j) => b.headers!(keep[j]) : undefined,
    };
  }

  async commit(): Promise<void> {
    await this.topic?.commit?.();
  }

  async close(): Promise<void> {
    await this.spec.replay.close();
    await this.topic?.close();
  }
}
