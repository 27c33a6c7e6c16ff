/**
 * The replay source: the archives' epochs (plan.ts) read in order, every source in lockstep, as a
 * `RecordSource` for the source runtime (src/stream/source.ts `runSource`), so that barriers,
 * signals and positions work as for `kappa ingest`.
 *
 * - Within an epoch: sources in argument order, their partitions oldest first, files by URI, rows
 *   in file order. Rows get their event time from the archive's `--ts-field` (delivered as the
 *   batch's native time, so each archive may have its own field), the non-time partition values as
 *   fields, and provenance `{ source: NAME }`. Rows outside [--from, --to) are dropped.
 * - Watermarks are explicit (`RowBatch.watermark`): every batch states the watermark after the
 *   previous epoch, and an epoch ends with an empty batch stating the epoch's watermark; the
 *   out-of-orderness of rows inside an epoch never moves it.
 * - `--max-rate N` (records per second, wall clock): batches are cut into slices of at most N/20
 *   rows and each slice waits until `sent / N` seconds have passed since the start (a token bucket
 *   with a burst of one slice).
 * - Position (`SourcePosition` kind `replay`): `{ kind: 'replay', epoch, start, part, file, uri,
 *   rows }`: epochs before `epoch` are done; in it, partitions before `part` (index in the epoch,
 *   by source then time) are done; of that partition, files before `file` are done and `rows` rows
 *   of file `file` (named `uri`) were delivered (dropped and bad rows included). `start` is the
 *   epoch's start (epoch ms), checked on resume.
 */

import type { RecordSource, SourcePosition } from '../connectors/source.js';
import { DataError } from '../errors.js';
import type { OpenedFile, RowBatch } from '../formats/format.js';
import { readerForPath } from '../formats/readers.js';
import { makeAssigner } from '../ops/assign.js';
import type { Schema } from '../stream/protocol.js';
import type { Archive } from './archive.js';
import { type Epoch, inRange, type PlanRange, planEpochs } from './plan.js';

/** The split name of archive batches (one watermark for the whole archive). */
export const REPLAY_SPLIT = 'replay';

/** Per-archive counters for the summary. */
export interface ArchiveCounts {
  name: string;
  partitions: number;
  records: number;
  /** Rows dropped because their event time is outside [--from, --to). */
  outside: number;
}

/** What `ReplaySource` reads. */
export interface ReplaySpec {
  archives: Archive[];
  range: PlanRange;
  /** `--max-rate`: records per second; undefined: unthrottled. */
  maxRate?: number;
  /** `--max-line-bytes` for NDJSON/CSV part files. */
  maxLineBytes?: number;
  /** Resume right after this position (see the module comment). */
  startAt?: SourcePosition;
  /**
   * The archive's newest partition may still be filling (`--then`: the topic continues it): no
   * watermark after the last epoch, so topic records of that partition are not late.
   */
  openEnd?: boolean;
  /** Clock and sleep (ms), injectable for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The archive replay as a record source (see the module comment). */
export class ReplaySource implements RecordSource {
  readonly progressUnit = 'bytes' as const;
  readonly total: number;
  readonly schema?: Schema;
  readonly epochs: Epoch[];
  readonly counts: ArchiveCounts[];
  private pos = { epoch: 0, part: 0, file: 0, rows: 0 };
  /** The last watermark stated (ms). */
  private wm = Number.NEGATIVE_INFINITY;
  private current = '';

  constructor(private readonly spec: ReplaySpec) {
    this.epochs = planEpochs(
      spec.archives.flatMap((a) => a.partitions),
      spec.range,
    );
    const n = this.epochs.length;
    if (spec.openEnd && n > 0)
      this.epochs[n - 1].watermark = n > 1 ? this.epochs[n - 2].watermark : -Infinity;
    this.total = this.epochs.reduce(
      (n, e) => n + e.parts.reduce((m, p) => m + p.files.reduce((k, f) => k + f.size, 0), 0),
      0,
    );
    // One schema for the header only when every archive has the same one.
    const s = spec.archives.map((a) => JSON.stringify(a.schema ?? null));
    if (spec.archives.length > 0 && s.every((x) => x === s[0]) && spec.archives[0].schema)
      this.schema = { ...spec.archives[0].schema };
    // Non-time partition values become string fields (as `kappa ingest` adds Hive fields).
    if (this.schema)
      for (const e of this.epochs)
        for (const p of e.parts)
          for (const f of p.files) for (const k of Object.keys(f.fields)) this.schema[k] ??= 'string';
    this.counts = spec.archives.map((a) => ({ name: a.name, partitions: 0, records: 0, outside: 0 }));
    if (spec.startAt) this.seek(spec.startAt);
  }

  /** The position after the last batch handed out (see the module comment). */
  position(): SourcePosition {
    const { epoch, part, file, rows } = this.pos;
    const e = this.epochs[epoch];
    const f = e?.parts[part]?.files[file];
    return { kind: 'replay', epoch, start: e ? e.start : null, part, file, uri: f ? f.uri : null, rows };
  }

  /** Current epoch and partitions done of total, for the progress line. */
  detail(): string {
    return `${this.current} (${Math.min(this.pos.epoch + 1, this.epochs.length)}/${this.epochs.length} partitions)`;
  }

  async close(): Promise<void> {}

  private seek(p: SourcePosition): void {
    const bad = (why: string) =>
      new DataError(
        `cannot resume replay at ${JSON.stringify(p)}: ${why}`,
        'resume with the same SOURCEs, --from, --to and --extra-partitions as the run that wrote the checkpoint',
      );
    if (p.kind !== 'replay') throw bad(`it is a '${p.kind}' position, not a replay position`);
    const num = (k: string) => {
      const v = p[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`'${k}' is not a count`);
      return v;
    };
    const epoch = num('epoch');
    const part = num('part');
    const file = num('file');
    const rows = num('rows');
    if (epoch > this.epochs.length) throw bad(`the plan has ${this.epochs.length} partitions`);
    const e = this.epochs[epoch];
    if (e && p.start !== e.start)
      throw bad(`partition ${epoch} starts at ${e.start}, not ${String(p.start)}`);
    if (e && part > e.parts.length) throw bad(`partition ${epoch} has ${e.parts.length} source partitions`);
    const pp = e?.parts[part];
    if (pp && file > pp.files.length) throw bad(`${pp.path} has ${pp.files.length} files`);
    const f = pp?.files[file];
    if (f && p.uri !== f.uri) throw bad(`file ${file} of ${pp?.path} is ${f.uri}, not ${String(p.uri)}`);
    this.pos = { epoch, part, file, rows };
    this.wm = epoch > 0 ? this.epochs[epoch - 1].watermark : Number.NEGATIVE_INFINITY;
  }

  async *batches(): AsyncGenerator<RowBatch> {
    const { archives, range } = this.spec;
    const now = this.spec.now ?? Date.now;
    const sleep = this.spec.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const rate = this.spec.maxRate;
    const slice = rate ? Math.max(1, Math.ceil(rate / 20)) : Number.POSITIVE_INFINITY;
    const t0 = now();
    let sent = 0;
    let bytesBefore = 0;
    const assigners = archives.map((a) => makeAssigner({ tsField: a.tsField, tsFormat: a.tsFormat }));
    // Bytes of what a resume skips count as done.
    for (let ei = 0; ei < this.pos.epoch; ei++)
      for (const p of this.epochs[ei].parts) for (const f of p.files) bytesBefore += f.size;
    let prefetch: { uri: string; opened: Promise<OpenedFile> } | undefined;
    for (let ei = this.pos.epoch; ei < this.epochs.length; ei++) {
      const e = this.epochs[ei];
      for (let pj = ei === this.pos.epoch ? this.pos.part : 0; pj < e.parts.length; pj++) {
        const part = e.parts[pj];
        const a = archives[part.source];
        const assign = assigners[part.source];
        this.current = `${a.name} ${part.path}`;
        const resuming = ei === this.pos.epoch && pj === this.pos.part;
        for (let fk = resuming ? this.pos.file : 0; fk < part.files.length; fk++) {
          const f = part.files[fk];
          let skip = resuming && fk === this.pos.file ? this.pos.rows : 0;
          this.pos = { epoch: ei, part: pj, file: fk, rows: skip };
          // The next file is opened (Parquet: footer read) while this one is read.
          const opening =
            prefetch?.uri === f.uri ? prefetch.opened : openFile(a, f.uri, this.spec.maxLineBytes);
          const nx = this.fileAfter(ei, pj, fk);
          prefetch = nx
            ? { uri: nx.uri, opened: openFile(archives[nx.source], nx.uri, this.spec.maxLineBytes) }
            : undefined;
          prefetch?.opened.catch(() => {}); // a failure surfaces when that file is read
          const opened = await opening;
          const fieldKeys = Object.keys(f.fields);
          let lastBytes = 0;
          for await (const b of opened.batches) {
            lastBytes = b.bytesDone ?? lastBytes;
            let start = 0;
            if (skip > 0) {
              start = Math.min(skip, b.rows.length);
              skip -= start;
            }
            for (let lo = start; lo < b.rows.length; lo += slice) {
              const hi = Math.min(b.rows.length, lo + slice);
              const idx: number[] = [];
              const ts: number[] = [];
              const errors = new Map<number, string>();
              for (let i = lo; i < hi; i++) {
                const row = b.rows[i];
                if (row === undefined) {
                  errors.set(idx.length, b.errors?.get(i) ?? 'unreadable row');
                  idx.push(i);
                  ts.push(Number.NaN);
                  continue;
                }
                for (const k of fieldKeys) if (!(k in row)) row[k] = f.fields[k];
                const r = assign(row);
                if ('error' in r) {
                  errors.set(idx.length, r.error);
                  idx.push(i);
                  ts.push(Number.NaN);
                  continue;
                }
                if (!inRange(r.ts, range)) {
                  this.counts[part.source].outside++;
                  continue;
                }
                idx.push(i);
                ts.push(r.ts);
              }
              this.counts[part.source].records += idx.length - errors.size;
              this.pos = { epoch: ei, part: pj, file: fk, rows: this.pos.rows + (hi - lo) };
              if (rate) {
                sent += idx.length;
                const wait = t0 + (sent / rate) * 1000 - now();
                if (wait > 0) await sleep(wait);
              }
              yield this.view(b, idx, ts, errors, fieldKeys.length > 0, a.name, bytesBefore + lastBytes);
            }
          }
          bytesBefore += f.size;
        }
        this.counts[part.source].partitions++;
      }
      // Epoch done: from here on, position says "the next epoch", and its watermark goes out.
      this.pos = { epoch: ei + 1, part: 0, file: 0, rows: 0 };
      if (e.watermark > this.wm) this.wm = e.watermark;
      yield this.view(undefined, [], [], new Map(), false, '', bytesBefore);
    }
  }

  /** The file read after file `fk` of partition `pj` of epoch `ei`, with its source index. */
  private fileAfter(ei: number, pj: number, fk: number): { uri: string; source: number } | undefined {
    for (let e = ei; e < this.epochs.length; e++) {
      const parts = this.epochs[e].parts;
      for (let p = e === ei ? pj : 0; p < parts.length; p++) {
        const k = e === ei && p === pj ? fk + 1 : 0;
        if (k < parts[p].files.length) return { uri: parts[p].files[k].uri, source: parts[p].source };
      }
    }
    return undefined;
  }

  /** Rows `idx` of `b` as a batch of the replay split, with their event times and provenance. */
  private view(
    b: RowBatch | undefined,
    idx: number[],
    ts: number[],
    errors: Map<number, string>,
    modified: boolean,
    name: string,
    bytesDone: number,
  ): RowBatch {
    const rows = b ? idx.map((i, j) => (errors.has(j) ? undefined : b.rows[i])) : [];
    return {
      rows,
      errors,
      where: (j) => b!.where(idx[j]),
      raw: (j) => b!.raw(idx[j]),
      rawIsJson: b?.rawIsJson === true && !modified,
      bigIntegers: b?.bigIntegers,
      bytesDone,
      split: REPLAY_SPLIT,
      watermark: this.wm,
      nativeTs: (j) => (Number.isNaN(ts[j]) ? undefined : ts[j]),
      prov: () => ({ source: name }),
    };
  }
}

async function openFile(a: Archive, uri: string, maxLineBytes: number | undefined): Promise<OpenedFile> {
  const r = readerForPath(uri);
  if (!r) throw new DataError(`${uri}: cannot tell the format of this data file from its name`);
  return r.open(a.store, uri, { maxLineBytes });
}
