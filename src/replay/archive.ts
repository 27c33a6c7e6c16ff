/**
 * Opens one archive SOURCE of `kappa replay`: a table directory (local or s3://) whose paths carry
 * time partitions, with or without a Delta log. With a log, the live files, their partition values
 * and per-file statistics come from the Delta snapshot (src/table/delta.ts), and so do the Kafka
 * offsets the table holds (commitInfo `kappa.kafkaOffsets`); without one, the files are listed and
 * their Hive path segments (`dt=…/hr=…`) parsed, as `kappa ingest` does (connectors/discover.ts).
 *
 * The time layout is a `--partition-by` spec of `kappa sink` (src/table/partition.ts): `--layout`,
 * else the table's `kappa.partitionBy`, else `dt=%Y-%m-%d/hr=%H` when the paths have `hr=`, else
 * `dt=%Y-%m-%d`. A partition's [start, end) is its time values parsed with the spec's patterns in
 * `--tz`, plus one unit of its finest directive.
 */
import { existsSync } from 'node:fs';
import { DateTime } from 'luxon';
import { hivePartitionValues } from '../connectors/discover.js';
import { DataError, UsageError } from '../errors.js';
import { readerForPath } from '../formats/readers.js';
import { isHiddenPath, joinUri, type ObjectStore, relativeUri, storeFor } from '../storage/store.js';
import type { FieldType, Schema } from '../stream/protocol.js';
import { typedTsFormat } from '../stream/source.js';
import { columnsFromSchemaString, decodeDeltaPath, readCommit, readDeltaLog } from '../table/delta.js';
import { type PartitionSpec, parsePartitionSpec } from '../table/partition.js';
import { type TsFormat, timestampParser } from '../time/timestamp.js';
import type { PlanFile, PlanPartition } from './plan.js';

/** Next offset per topic and partition: `{ "<topic>": { "<partition>": "<next offset>" } }`. */
export type KafkaOffsets = Record<string, Record<string, string>>;

/** One opened archive source. */
export interface Archive {
  /** Provenance name: NAME of `NAME=SOURCE`, else the SOURCE as given. */
  name: string;
  root: string;
  store: ObjectStore;
  layout: PartitionSpec;
  /** The event-time field (dotted path) and how to read it. */
  tsField: string;
  tsFormat: TsFormat;
  /** Value schema if known (Delta schema or the first Parquet file). */
  schema?: Schema;
  /** Its time partitions (any order); `source` is the index given to `openArchive`. */
  partitions: PlanPartition[];
  /** Delta log version read, if the table has a log. */
  version?: number;
  /**
   * Max over the commits up to `version` of each commit's `kappa.kafkaOffsets` (the next offset
   * per topic partition the table holds), or undefined when no commit records any.
   */
  kafkaOffsets?: KafkaOffsets;
}

/** Options of `openArchive` (from the replay flags). */
export interface ArchiveOptions {
  layout?: string;
  tz: string;
  /** `--ts-field` values (`FIELD` or `NAME=FIELD`, see tsFieldFor). */
  tsField?: string[];
  tsFormat: TsFormat;
}

/**
 * Splits `NAME=SOURCE` (NAME a plain word) from SOURCE. An argument that is itself an existing local
 * path (a directory named `dt=2024-01-01`) is a SOURCE without a name.
 */
export function splitNamed(arg: string): { name: string; source: string } {
  const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.+)$/.exec(arg);
  if (m && (m[2].includes('://') || !existsSync(arg))) return { name: m[1], source: m[2] };
  return { name: arg, source: arg };
}

/**
 * The event-time field of source `name` from the `--ts-field` values: `NAME=FIELD` for one
 * source, a bare `FIELD` for every source not named.
 */
export function tsFieldFor(values: readonly string[] | undefined, name: string): string | undefined {
  let all: string | undefined;
  for (const v of values ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.+)$/.exec(v);
    if (m && m[1] === name) return m[2];
    if (!m) all = v;
  }
  return all;
}

/**
 * Opens archive `index` from its argument.
 * @throws UsageError for a source with no data files, a layout without time directives, paths that
 *   do not carry the layout's time columns, or no event-time field (`--ts-field`)
 * @throws DataError for a partition value that does not parse with the layout's pattern, or a
 *   broken Delta log
 */
export async function openArchive(arg: string, index: number, o: ArchiveOptions): Promise<Archive> {
  const { name, source } = splitNamed(arg);
  const root = source.replace(/\/+$/, '');
  const store = storeFor(root);
  const snap = await readDeltaLog(store, root);
  type Raw = { uri: string; size: number; values: Record<string, string | null>; stats?: string };
  const raws: Raw[] = [];
  let schema: Schema | undefined;
  let configured: string | undefined;
  let declaredTs: string | undefined;
  let kafkaOffsets: KafkaOffsets | undefined;
  if (snap?.metaData) {
    const md = snap.metaData;
    configured = md.configuration?.['kappa.partitionBy'];
    declaredTs = md.configuration?.['kappa.eventTimeField'];
    const timeCols = (md.configuration?.['kappa.eventTimePartitionColumns'] ?? '').split(',').filter(Boolean);
    schema = {};
    for (const c of columnsFromSchemaString(md.schemaString, timeCols)) schema[c.name] = c.type;
    for (const add of snap.files.values()) {
      const rel = decodeDeltaPath(add.path);
      raws.push({
        uri: /^[a-z][a-z0-9+.-]*:\/\//i.test(rel) ? rel : joinUri(root, rel),
        size: add.size,
        values: add.partitionValues ?? {},
        stats: add.stats,
      });
    }
    kafkaOffsets = await readKafkaOffsets(store, root, snap.version);
  } else {
    for await (const e of store.list(root)) {
      const rel = relativeUri(root, e.uri);
      if (e.uri === root || isHiddenPath(rel) || !readerForPath(e.uri)) continue;
      raws.push({ uri: e.uri, size: e.size, values: hivePartitionValues(rel) });
    }
    if (raws.length === 0) throw new UsageError(`no data files found at '${source}'`);
  }
  raws.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
  const layoutText =
    o.layout ?? configured ?? (raws.some((r) => 'hr' in r.values) ? 'dt=%Y-%m-%d/hr=%H' : 'dt=%Y-%m-%d');
  const layout = parsePartitionSpec(layoutText);
  if (!layout.unit)
    throw new UsageError(
      `--layout '${layoutText}': replay needs time partitions (a segment like dt=%Y-%m-%d)`,
    );
  if (!schema && raws.length > 0) {
    const r = readerForPath(raws[0].uri);
    if (r?.name === 'parquet') schema = (await r.open(store, raws[0].uri, {})).schema;
  }
  const tsField = tsFieldFor(o.tsField, name) ?? declaredTs ?? firstTimeColumn(schema);
  if (!tsField)
    throw new UsageError(
      `${source}: the table declares no event-time column (no timestamp column, no kappa.eventTimeField)`,
      'give --ts-field FIELD',
    );
  const tsFormat = typedTsFormat(o.tsFormat, tsField, schema);
  const statParser = statsParser(schema?.[tsField], tsFormat, o.tz);
  const timeSegs = layout.segments.filter((s) => s.kind === 'time');
  const timeCols = new Set(timeSegs.map((s) => s.column));
  const fmt = timeSegs.map((s) => (s.kind === 'time' ? s.luxon : '')).join('|');
  const unit = layout.unit;
  const byPath = new Map<string, PlanPartition>();
  for (const r of raws) {
    const vals: string[] = [];
    for (const c of timeCols) {
      const v = r.values[c];
      if (v === undefined || v === null)
        throw new UsageError(
          `${r.uri}: its path has no '${c}=' segment of the layout '${layoutText}'`,
          'give --layout in the --partition-by syntax of kappa sink, e.g. --layout "date=%Y%m%d/hour=%H"',
        );
      vals.push(v);
    }
    const path = [...timeCols].map((c, i) => `${c}=${vals[i]}`).join('/');
    let part = byPath.get(path);
    if (!part) {
      const dt = DateTime.fromFormat(vals.join('|'), fmt, { zone: o.tz });
      if (!dt.isValid)
        throw new DataError(
          `${r.uri}: partition '${path}' does not match the layout '${layoutText}' (${dt.invalidExplanation ?? dt.invalidReason})`,
          'give --layout with the right patterns',
        );
      const start = dt.startOf(unit).toMillis();
      part = {
        source: index,
        start,
        end: dt
          .startOf(unit)
          .plus({ [`${unit}s`]: 1 })
          .toMillis(),
        path,
        files: [],
      };
      byPath.set(path, part);
    }
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.values)) if (v !== null && !timeCols.has(k)) fields[k] = v;
    const f: PlanFile = { uri: r.uri, size: r.size, fields };
    if (r.stats) {
      try {
        const st = JSON.parse(r.stats) as {
          minValues?: Record<string, unknown>;
          maxValues?: Record<string, unknown>;
        };
        const lo = statParser(st.minValues?.[tsField]);
        const hi = statParser(st.maxValues?.[tsField]);
        if (lo !== undefined) f.minTs = lo;
        if (hi !== undefined) f.maxTs = hi;
      } catch {
        /* statistics are an optimisation: unreadable ones are ignored */
      }
    }
    part.files.push(f);
  }
  return {
    name,
    root,
    store,
    layout,
    tsField,
    tsFormat,
    schema,
    partitions: [...byPath.values()],
    version: snap?.metaData ? snap.version : undefined,
    kafkaOffsets,
  };
}

function firstTimeColumn(schema: Schema | undefined): string | undefined {
  if (!schema) return undefined;
  return Object.entries(schema).find(([, t]) => t === 'timestamptz' || t === 'timestamp')?.[0];
}

/** Reads a Delta min/max statistic of the event-time column as epoch ms (as rows are read). */
function statsParser(
  type: FieldType | undefined,
  tsFormat: TsFormat,
  tz: string,
): (v: unknown) => number | undefined {
  const rows = timestampParser(tsFormat, tz);
  return (v) => {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && type === 'timestamptz') {
      const t = Date.parse(v);
      return Number.isNaN(t) ? undefined : t;
    }
    if (typeof v === 'string' && type === 'timestamp') {
      const t = DateTime.fromISO(v, { zone: tz });
      return t.isValid ? t.toMillis() : undefined;
    }
    return rows(v);
  };
}

/**
 * The Kafka offsets a Delta table holds: for every topic partition, the largest `next offset` any
 * commit up to `version` recorded in commitInfo `kappa.kafkaOffsets`. Versions already cleaned up
 * from the log are skipped. Undefined when no commit records offsets.
 */
export async function readKafkaOffsets(
  store: ObjectStore,
  root: string,
  version: number,
): Promise<KafkaOffsets | undefined> {
  let out: KafkaOffsets | undefined;
  for (let v = 0; v <= version; v++) {
    const actions = await readCommit(store, root, v);
    const info = actions?.find((a) => a.commitInfo)?.commitInfo as Record<string, unknown> | undefined;
    const ko = info?.['kappa.kafkaOffsets'];
    if (!ko || typeof ko !== 'object') continue;
    out ??= {};
    for (const [topic, parts] of Object.entries(ko as Record<string, unknown>)) {
      if (!parts || typeof parts !== 'object') continue;
      out[topic] ??= {};
      const t = out[topic];
      for (const [p, o] of Object.entries(parts as Record<string, unknown>)) {
        if (!/^\d+$/.test(String(o))) continue;
        const next = BigInt(String(o));
        if (t[p] === undefined || BigInt(t[p]) < next) t[p] = next.toString();
      }
    }
  }
  return out;
}
