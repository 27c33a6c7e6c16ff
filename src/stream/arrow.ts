/**
 * Protocol version 2 of the kappa stream: an Arrow IPC stream (man/kappa-stream.5, "VERSION 2";
 * issue 14), and the Arrow-backed RecordBatch (batch.ts) its reader hands out.
 *
 * Library: @uwdata/flechette 2.6.0 (measured against apache-arrow 21.2.0 in bench/ANALYSIS.md,
 * "Arrow library"): it decodes 4x faster and imports in less time. flechette only encodes and
 * decodes whole IPC buffers, so this module frames the byte stream into messages itself (the
 * Arrow IPC encapsulated message format: 0xFFFFFFFF, int32 metadata length, a flatbuffer `Message`
 * whose `bodyLength` gives the body size; https://arrow.apache.org/docs/format/Columnar.html#ipc-streaming-format).
 *
 * Layout of every record batch (the columns of one stream segment):
 * - `$event`  utf8, null for a record; on a control row the version-1 line of the event
 *             (`{"watermark":N}`, `{"barrier":{…}}`, `{"end":true}`). Control rows travel alone in
 *             one-row batches, so a batch of records has no non-null `$event`.
 * - `$ts`     timestamp[ms, UTC], the record's event time.
 * - `$key`    utf8, the record key (null: no key).
 * - `$prov`, `$headers`  utf8 JSON text of the provenance / headers, null when absent.
 * - `$value`  utf8 JSON text of a value that is not a JSON object (null otherwise).
 * - `$missing` utf8 JSON array of the value fields the record lacks (null: it has them all), so
 *             that a missing field and a field that is null stay different, as in version 1.
 * - one column per top-level value field, by its kappa type (field metadata `kappa.type`):
 *   string -> dictionary<int32, utf8>, int64 -> int64, float64/decimal -> float64, boolean -> bool,
 *   timestamp -> timestamp[ms], timestamptz -> timestamp[ms, UTC], everything else (and a column
 *   whose values do not fit its type) -> utf8 JSON text (field metadata `kappa.encoding` = `json`).
 *   A value field whose name starts with `$` is written as `$` + its name.
 * The schema's custom metadata `kappa` holds the header, `{"kappa":2,"schema":{…}}`.
 *
 * A batch whose fields or column types differ from the current segment's starts a new segment: the
 * writer closes the IPC stream (end-of-stream marker) and starts another with a new schema message
 * (its metadata `kappa` holds the same header). Readers continue over it; after an `end` control row
 * a new segment is the next part of a concatenated stream.
 */
import {
  Batch,
  batchType,
  bool,
  columnFromArray,
  type DataType,
  dictionary,
  type Column as FColumn,
  type Field,
  Column as FlechetteColumn,
  float64 as f64Type,
  int32,
  int64,
  Table,
  type Table as TableType,
  TimeUnit,
  Type,
  tableFromIPC,
  tableToIPC,
  timestamp,
  utf8,
} from '@uwdata/flechette/dist/flechette.mjs';
import type { Column, RecordBatch } from './batch.js';
import type {
  Barrier,
  FieldType,
  Header,
  PipelineInfo,
  Provenance,
  Rec,
  Schema,
  StopInfo,
} from './protocol.js';

/** Version number of the Arrow encoding in the header (`{"kappa":2,…}`). */
export const ARROW_PROTOCOL_VERSION = 2;

/** The IPC continuation marker that starts every message: the first bytes of a version-2 stream. */
export const CONTINUATION = 0xffffffff;

/** The end-of-stream marker of an IPC stream (continuation + zero metadata length). */
export const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Reserved column names (value fields starting with `$` get one more `$`). */
export const EVENT = '$event';
const TS = '$ts';
const KEY = '$key';
const PROV = '$prov';
const HEADERS = '$headers';
const VALUE = '$value';
const MISSING = '$missing';
const RESERVED = [EVENT, TS, KEY, PROV, HEADERS, VALUE, MISSING] as const;

/** Largest int64 that a JS number holds exactly (Number.MAX_SAFE_INTEGER, 2^53 - 1). */
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Arrow message kinds (flatbuffer `MessageHeader`). */
export const MessageKind = { Schema: 1, DictionaryBatch: 2, RecordBatch: 3 } as const;

/** One framed IPC message: its kind and its bytes (continuation, metadata and body). */
export interface IpcMessage {
  kind: number;
  bytes: Uint8Array;
  /** Dictionary id of a DictionaryBatch message. */
  dictId?: number;
  /** A DictionaryBatch message that extends (true) rather than replaces the dictionary of its id. */
  isDelta?: boolean;
}

/**
 * Reads one message at `pos` of `buf`. When `buf` does not yet hold all of it, returns `{ need }`,
 * the bytes from `pos` needed to go on (at least); `message` is null for the end-of-stream marker.
 * @throws Error when the bytes are not an IPC message (no continuation marker)
 */
export function frameMessage(
  buf: Uint8Array,
  pos: number,
): { message: IpcMessage | null; size: number } | { need: number } {
  if (buf.length - pos < 8) return { need: 8 };
  const dv = new DataView(buf.buffer, buf.byteOffset + pos, buf.length - pos);
  if (dv.getUint32(0, true) !== CONTINUATION)
    throw new Error('not an Arrow IPC message (no continuation marker 0xFFFFFFFF)');
  const metaLen = dv.getInt32(4, true);
  if (metaLen === 0) return { message: null, size: 8 };
  if (metaLen < 0) throw new Error(`invalid Arrow IPC metadata length ${metaLen}`);
  if (buf.length - pos < 8 + metaLen) return { need: 8 + metaLen };
  // flatbuffer Message table: root offset, vtable; fields 1 header_type (u8), 2 header (offset),
  // 3 bodyLength (i64).
  const m = 8;
  const table = m + dv.getUint32(m, true);
  const vtable = table - dv.getInt32(table, true);
  const vlen = dv.getUint16(vtable, true);
  const field = (i: number): number => {
    const o = 4 + 2 * i;
    return o < vlen ? dv.getUint16(vtable + o, true) : 0;
  };
  const kind = field(1) ? dv.getUint8(table + field(1)) : 0;
  const bodyLen = field(3) ? Number(dv.getBigInt64(table + field(3), true)) : 0;
  const size = 8 + metaLen + bodyLen;
  if (buf.length - pos < size) return { need: size };
  let dictId: number | undefined;
  let isDelta: boolean | undefined;
  if (kind === MessageKind.DictionaryBatch && field(2)) {
    // DictionaryBatch table: fields 0 id (i64), 1 data (RecordBatch), 2 isDelta (bool).
    const h = table + field(2) + dv.getUint32(table + field(2), true);
    const hv = h - dv.getInt32(h, true);
    const hvLen = dv.getUint16(hv, true);
    const idOff = hvLen > 4 ? dv.getUint16(hv + 4, true) : 0;
    dictId = idOff ? Number(dv.getBigInt64(h + idOff, true)) : 0;
    const deltaOff = hvLen > 8 ? dv.getUint16(hv + 8, true) : 0;
    isDelta = deltaOff ? dv.getUint8(h + deltaOff) !== 0 : false;
  }
  return { message: { kind, bytes: buf.subarray(pos, pos + size), dictId, isDelta }, size };
}

// ---------------------------------------------------------------------------------------------
// Reading: Arrow-backed batches.

/** A control event carried by a `$event` row. */
export type ControlEvent =
  | { kind: 'watermark'; watermark: number }
  | { kind: 'barrier'; barrier: Barrier }
  | { kind: 'end'; final?: Barrier }
  | { kind: 'stop'; stop: StopInfo };

type Enc = 'string' | 'int64' | 'float64' | 'boolean' | 'timestamp' | 'json' | 'text';

/**
 * Writes the first `n` values of `vals` (int64, little-endian) into `out` as numbers, without a
 * BigInt per value: the two 32-bit halves through one Uint32Array view, `hi * 2^32 + lo`, rounded
 * once as `Number(bigint)` rounds (a signed `Int32Array` view indexed `2 * i` ran at half the speed).
 * `exact`: stop and return false at the first value beyond ±(2^53 - 1) (for a column without
 * nulls: a null slot may hold anything). Returns true when every value was converted.
 */
function int64ToFloat64(vals: BigInt64Array, n: number, out: Float64Array, exact: boolean): boolean {
  const w = new Uint32Array(vals.buffer, vals.byteOffset, 2 * n);
  const two32 = 4294967296;
  if (!exact) {
    for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = (w[j + 1] | 0) * two32 + w[j];
    return true;
  }
  for (let i = 0, j = 0; i < n; i++, j += 2) {
    const hi = w[j + 1] | 0;
    const lo = w[j];
    if (hi > 0x1fffff || hi < -0x200000 || (hi === -0x200000 && lo === 0)) return false;
    out[i] = hi * two32 + lo;
  }
  return true;
}

/** True when each of the first `n` int64 values of `vals` is within ±(2^53 - 1). */
function int64Exact(vals: BigInt64Array, n: number): boolean {
  const w = new Uint32Array(vals.buffer, vals.byteOffset, 2 * n);
  for (let j = 1; j < 2 * n; j += 2) {
    const hi = w[j] | 0;
    if (hi > 0x1fffff || hi < -0x200000 || (hi === -0x200000 && w[j - 1] === 0)) return false;
  }
  return true;
}

/** A column over one flechette column of a decoded batch. */
class ArrowColumn implements Column {
  private f64: Float64Array | null | undefined;
  /**
   * The int64 buffer (of a column without nulls) was overwritten by `f64` (own message bytes):
   * `get` and `isNull` answer from `f64`; the flechette column must not be read any more.
   */
  private inPlace = false;
  private dict: { codes: Int32Array; values: readonly string[] } | undefined;
  /**
   * @param own the column's buffers lie in memory the reader owns and nobody else sees (a copied
   *   IPC message): `float64()` of an int64 or timestamp column may then convert in place
   */
  constructor(
    readonly type: FieldType,
    private readonly enc: Enc,
    private readonly col: FColumn<unknown>,
    private readonly own = false,
  ) {}

  /** Values of a column in its own encoding are all of its type; a JSON-text column may mix. */
  get typed(): boolean {
    return this.enc !== 'json';
  }

  get length(): number {
    return this.col.length;
  }

  isNull(i: number): boolean {
    return !this.inPlace && this.col.at(i) === null;
  }

  get(i: number): unknown {
    // Converted in place (a column without nulls): the int64s are gone, flechette must not read them.
    if (this.inPlace) return (this.f64 as Float64Array)[i];
    const v = this.col.at(i);
    if (v === null) return null;
    switch (this.enc) {
      case 'int64': {
        const b = v as bigint;
        return b >= -SAFE && b <= SAFE ? Number(b) : b.toString();
      }
      case 'timestamp':
        return Number(v as bigint);
      case 'json':
        return JSON.parse(v as string);
      default:
        return v;
    }
  }

  float64(): Float64Array | undefined {
    if (this.f64 === undefined) this.f64 = this.toFloat64() ?? null;
    return this.f64 ?? undefined;
  }

  private toFloat64(): Float64Array | undefined {
    if (this.enc !== 'int64' && this.enc !== 'float64' && this.enc !== 'timestamp') return undefined;
    const batch = this.col.data[0];
    const n = this.col.length;
    if (!batch) return new Float64Array(0);
    const validity = batch.nullCount > 0 ? batch.validity : undefined;
    if (this.enc === 'float64') {
      // Arrow buffers are padded: the typed array may be longer than the column.
      const vals = (batch.values as Float64Array).subarray(0, n);
      if (!validity) return vals;
      const a = Float64Array.from(vals);
      for (let i = 0; i < n; i++) if (!((validity[i >> 3] >> (i & 7)) & 1)) a[i] = Number.NaN;
      return a;
    }
    const vals = batch.values as BigInt64Array;
    if (this.own && !validity && vals.byteOffset % 8 === 0) {
      // Own message bytes: the doubles overwrite the int64s they come from (each value is read
      // before its slot is written), so no 8 bytes per row of new ArrayBuffer memory (V8 counts
      // that toward its old-generation limit: mark-compacts). Checked first: a value beyond
      // ±(2^53 - 1) leaves the column untouched (get() then gives exact strings).
      if (!int64Exact(vals, n)) return undefined;
      const a = new Float64Array(vals.buffer, vals.byteOffset, n);
      int64ToFloat64(vals, n, a, false);
      this.inPlace = true;
      return a;
    }
    const a = new Float64Array(n);
    // Values beyond ±(2^53 - 1) would be rounded: no Float64Array view then (callers use get()).
    if (!validity) return int64ToFloat64(vals, n, a, true) ? a : undefined;
    const w = new Uint32Array(vals.buffer, vals.byteOffset, 2 * n);
    for (let i = 0, j = 0; i < n; i++, j += 2) {
      if (!((validity[i >> 3] >> (i & 7)) & 1)) {
        a[i] = Number.NaN;
        continue;
      }
      const hi = w[j + 1] | 0;
      const lo = w[j];
      if (hi > 0x1fffff || hi < -0x200000 || (hi === -0x200000 && lo === 0)) return undefined;
      a[i] = hi * TWO32 + lo;
    }
    return a;
  }

  dictionary(): { codes: Int32Array; values: readonly string[] } | undefined {
    if (this.enc !== 'string') return undefined;
    if (!this.dict) {
      const batch = this.col.data[0] as unknown as
        | { values: Int32Array; dictionary: FColumn<string>; validity: Uint8Array; nullCount: number }
        | undefined;
      if (!batch) {
        this.dict = { codes: new Int32Array(0), values: [] };
        return this.dict;
      }
      // The codes are the Arrow buffer itself unless nulls must become -1 (then a copy); the
      // values are the strings flechette already decoded for the batch (`cache()`, filled by
      // `setDictionary`): decoding them again with `toArray()` was a second TextDecoder pass.
      const raw = batch.values.subarray(0, this.col.length);
      const codes = batch.nullCount > 0 ? raw.slice() : raw;
      if (batch.nullCount > 0)
        for (let i = 0; i < codes.length; i++) if (!((batch.validity[i >> 3] >> (i & 7)) & 1)) codes[i] = -1;
      const dictCol = batch.dictionary as FColumn<string> & { cache(): ArrayLike<string> };
      this.dict = { codes, values: dictCol.cache() as readonly string[] };
    }
    return this.dict;
  }
}

/** Reads optional JSON text column value i. */
function jsonAt(col: FColumn<unknown> | null, i: number): unknown {
  const v = col?.at(i);
  return v == null ? undefined : JSON.parse(v as string);
}

/** Encoding of a value column from its Arrow type and field metadata. */
function encOf(f: Field): Enc {
  if (f.metadata?.get('kappa.encoding') === 'json') return 'json';
  switch (f.type.typeId) {
    case Type.Dictionary:
      return 'string';
    case Type.Int:
      return 'int64';
    case Type.Float:
      return 'float64';
    case Type.Bool:
      return 'boolean';
    case Type.Timestamp:
      return 'timestamp';
    case Type.Utf8:
      return 'text';
    default:
      return 'json';
  }
}

/**
 * A RecordBatch over one decoded Arrow record batch (no control rows). Numeric columns are the
 * Arrow buffers themselves (float64) or one conversion pass (int64, timestamps); string columns
 * keep their dictionary codes. `rec(i)` gives record i exactly as version 1 would carry it.
 */
export class ArrowRecordBatch implements RecordBatch {
  readonly length: number;
  readonly ts: Float64Array;
  readonly key: Column;
  readonly fields: readonly string[];
  private readonly cols = new Map<string, ArrowColumn>();
  private readonly provCol: FColumn<unknown> | null;
  private readonly headersCol: FColumn<unknown> | null;
  private readonly valueCol: FColumn<unknown> | null;
  private readonly missingCol: FColumn<unknown> | null;
  readonly prov?: (i: number) => Provenance | undefined;
  readonly headers?: (i: number) => Record<string, string> | undefined;
  /** No record lacks a field and every value is an object (no `$missing`, no `$value` in the batch). */
  readonly complete: boolean;

  /**
   * @param table one decoded record batch of a version-2 stream (columns as in this module's doc)
   * @param own the table's buffers lie in a copy of the message that only this batch sees (the
   *   framer's, arrow-input.ts): event time and int64 columns are then converted to doubles in
   *   place, over their int64 buffers, instead of into new arrays
   */
  constructor(table: TableType, own = false) {
    this.length = table.numRows;
    const tsCol = table.getChild(TS);
    const tv = tsCol.data[0]?.values as BigInt64Array | undefined;
    let ts: Float64Array;
    if (tv && own && tv.byteOffset % 8 === 0) {
      ts = new Float64Array(tv.buffer, tv.byteOffset, this.length);
      int64ToFloat64(tv, this.length, ts, false); // in place: each value read before it is written
    } else {
      ts = new Float64Array(this.length);
      if (tv) int64ToFloat64(tv, ts.length, ts, false);
    }
    this.ts = ts;
    this.key = new ArrowColumn('string', 'text', table.getChild(KEY));
    this.provCol = table.getChild(PROV) ?? null;
    this.headersCol = table.getChild(HEADERS) ?? null;
    this.valueCol = table.getChild(VALUE) ?? null;
    this.missingCol = table.getChild(MISSING) ?? null;
    this.complete =
      (!this.missingCol || this.missingCol.nullCount === this.length) &&
      (!this.valueCol || this.valueCol.nullCount === this.length);
    if (this.provCol && this.provCol.nullCount < this.length)
      this.prov = (i) => jsonAt(this.provCol, i) as Provenance | undefined;
    if (this.headersCol && this.headersCol.nullCount < this.length)
      this.headers = (i) => jsonAt(this.headersCol, i) as Record<string, string> | undefined;
    const fields: string[] = [];
    table.schema.fields.forEach((f, idx) => {
      if ((RESERVED as readonly string[]).includes(f.name)) return;
      const name = f.name.startsWith('$$') ? f.name.slice(1) : f.name;
      const kt = (f.metadata?.get('kappa.type') as FieldType | undefined) ?? 'json';
      fields.push(name);
      this.cols.set(name, new ArrowColumn(kt, encOf(f), table.getChildAt(idx), own));
    });
    this.fields = fields;
  }

  column(name: string): Column | undefined {
    return this.cols.get(name);
  }

  private missing(i: number): readonly string[] | undefined {
    const m = this.missingCol?.at(i);
    return m == null ? undefined : (JSON.parse(m as string) as string[]);
  }

  /** True when record i's value lacks field `f` (a missing field, not a null one). */
  lacks(i: number, f: string): boolean {
    return this.missing(i)?.includes(f) === true;
  }

  /** Record i's value when it is not a JSON object (an array, a number, null…), else undefined. */
  nonObjectValue(i: number): unknown {
    const raw = this.valueCol?.at(i);
    return raw == null ? undefined : JSON.parse(raw as string);
  }

  value(i: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const miss = this.missing(i);
    for (const f of this.fields) {
      if (miss?.includes(f)) continue;
      o[f] = (this.cols.get(f) as ArrowColumn).get(i);
    }
    return o;
  }

  /** Record i as version 1 carries it (a value that is not an object included). */
  rec(i: number): Rec {
    const raw = this.valueCol?.at(i);
    const r: Rec = {
      ts: this.ts[i],
      key: (this.key.get(i) as string | null) ?? null,
      value: raw == null ? this.value(i) : JSON.parse(raw as string),
    };
    const p = this.prov?.(i);
    if (p !== undefined) r.prov = p;
    const h = this.headers?.(i);
    if (h !== undefined) r.headers = h;
    return r;
  }
}

/** What one decoded record-batch message holds: records, or one control event. */
export type DecodedBatch = { kind: 'records'; batch: ArrowRecordBatch } | ControlEvent;

/**
 * Decodes one record batch message given its segment's schema message and dictionaries.
 * @throws Error for a malformed batch or a control row that is not a control event
 */
export function decodeBatch(
  schema: Uint8Array,
  dicts: Iterable<Uint8Array>,
  batch: Uint8Array,
  own = false,
): DecodedBatch {
  const table = tableFromIPC([schema, ...dicts, batch], { useBigInt: true });
  const ev = table.getChild(EVENT);
  if (!ev) throw new Error(`not a kappa version-2 stream: the batch has no ${EVENT} column`);
  if (ev.nullCount === table.numRows || table.numRows === 0)
    return { kind: 'records', batch: new ArrowRecordBatch(table, own) };
  if (table.numRows !== 1) throw new Error(`a control batch must have one row, got ${table.numRows}`);
  const o = JSON.parse(ev.at(0) as string) as Record<string, unknown>;
  if (typeof o.watermark === 'number') return { kind: 'watermark', watermark: o.watermark };
  if (typeof o.barrier === 'object' && o.barrier !== null)
    return { kind: 'barrier', barrier: o.barrier as Barrier };
  if (o.end === true)
    return typeof o.checkpoint === 'object' && o.checkpoint !== null
      ? { kind: 'end', final: o.checkpoint as Barrier }
      : { kind: 'end' };
  if (typeof o.stop === 'object' && o.stop !== null) return { kind: 'stop', stop: o.stop as StopInfo };
  throw new Error(`unknown control event ${JSON.stringify(o).slice(0, 80)}`);
}

/** The kappa header in a schema message's custom metadata (`kappa` key). */
export function headerOfSchema(schemaMsg: Uint8Array): Header {
  const t = tableFromIPC([schemaMsg, EOS]);
  const h = t.schema.metadata?.get('kappa');
  if (h === undefined) throw new Error('the Arrow schema has no "kappa" metadata: not a kappa stream');
  return JSON.parse(h) as Header;
}

// ---------------------------------------------------------------------------------------------
// Writing.

interface Plan {
  name: string;
  kappaType: FieldType;
  enc: Enc;
}

const TEXT_TYPES: ReadonlySet<FieldType> = new Set(['date', 'binary']);

/** The Arrow encoding a kappa-typed column's values fit (first choice, checked by `fits`). */
function preferred(t: FieldType): Enc {
  switch (t) {
    case 'string':
      return 'string';
    case 'int64':
      return 'int64';
    case 'float64':
    case 'decimal':
      return 'float64';
    case 'boolean':
      return 'boolean';
    case 'timestamp':
    case 'timestamptz':
      return 'timestamp';
    default:
      return TEXT_TYPES.has(t) ? 'text' : 'json';
  }
}

/**
 * True when `v` is how version 1 carries an int64 beyond ±(2^53 - 1): the canonical decimal text
 * of an integer in [-2^63, 2^63 - 1] outside the safe range (no sign on zero, no leading zeros, no
 * spaces). The reader gives exactly such texts back for values beyond the safe range and numbers
 * within it, so any other string ("12", "007", "-0") is a string value, not an int64: storing it
 * as one would change its JSON kind between the two encodings.
 */
function isBigIntText(v: string): boolean {
  if (!/^-?[1-9]\d{15,18}$/.test(v)) return false;
  const b = BigInt(v);
  return (b > SAFE || b < -SAFE) && b <= INT64_MAX && b >= -INT64_MAX - 1n;
}

const INT64_MAX = (1n << 63n) - 1n;

function fits(enc: Enc, v: unknown): boolean {
  switch (enc) {
    case 'string':
    case 'text':
      return typeof v === 'string';
    case 'int64':
      return (typeof v === 'number' && Number.isSafeInteger(v)) || (typeof v === 'string' && isBigIntText(v));
    case 'float64':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'timestamp':
      return typeof v === 'number' && Number.isInteger(v);
    default:
      return true;
  }
}

function arrowType(p: Plan): DataType {
  switch (p.enc) {
    case 'string':
      return dictionary(utf8(), int32());
    case 'int64':
      return int64();
    case 'float64':
      return f64Type();
    case 'boolean':
      return bool();
    case 'timestamp':
      return timestamp(TimeUnit.MILLISECOND, p.kappaType === 'timestamptz' ? 'UTC' : null);
    default:
      return utf8();
  }
}

/** The cells of the rows to encode: a batch, plus the per-row facts only records have. */
interface Source {
  n: number;
  ts(i: number): number | null;
  key(i: number): string | null;
  prov(i: number): Provenance | undefined;
  headers(i: number): Record<string, string> | undefined;
  /** JSON value of a record whose value is not an object, else undefined. */
  nonObject(i: number): unknown;
  fields: readonly { name: string; type: FieldType; col: Column }[];
  /** Fields of row i absent from its value (only asked for null cells). */
  absent(i: number, f: string): boolean;
  event?: string;
  /** Every record has every field and an object value (`RecordBatch.complete`): no $missing, no $value. */
  complete?: boolean;
  /** Event times as one array (a batch), instead of `ts(i)` per row. */
  tsArray?: Float64Array;
  /** No row has provenance or headers (with `complete`: no per-row facts but the key). */
  noRowFacts?: boolean;
  /** The keys as dictionary codes (a typed key column), instead of `key(i)` per row. */
  keyDict?: { codes: Int32Array; values: readonly string[] };
}

/**
 * Encodes batches and control events as a version-2 stream: a sequence of IPC messages. Stateful:
 * it remembers the current segment's columns and starts a new segment when they change.
 */
export class ArrowEncoder {
  private signature: string | undefined;
  private optional = { prov: false, headers: false, value: false, missing: false };
  private plans: Plan[] = [];
  /**
   * @param schema the stream's header schema (carried in the schema metadata)
   * @param pipeline the header's pipeline info (carried there too)
   */
  constructor(
    private readonly schema: Schema | undefined,
    private readonly pipeline?: PipelineInfo,
  ) {}

  /** Encodes a batch of records; returns the bytes to write (empty for an empty batch). */
  batch(b: RecordBatch): Uint8Array[] {
    if (b.length === 0) return [];
    const exact = b instanceof ArrowRecordBatch ? b : undefined;
    const valueCache = new Map<number, Record<string, unknown>>();
    const src: Source = {
      n: b.length,
      ts: (i) => b.ts[i],
      key: (i) => (b.key.get(i) as string | null) ?? null,
      prov: (i) => b.prov?.(i),
      headers: (i) => b.headers?.(i),
      nonObject: (i) => exact?.nonObjectValue(i),
      fields: b.fields.map((name) => {
        const col = b.column(name) as Column;
        return { name, type: col.type, col };
      }),
      complete: b.complete === true,
      noRowFacts: b.prov === undefined && b.headers === undefined,
      tsArray: b.ts,
      keyDict: b.key.typed ? b.key.dictionary() : undefined,
      absent(i, f) {
        if (b.complete) return false;
        if (exact) return exact.lacks(i, f);
        let v = valueCache.get(i);
        if (!v) {
          v = b.value(i);
          valueCache.set(i, v);
        }
        return !Object.hasOwn(v, f);
      },
    };
    return this.encode(src);
  }

  /** Encodes records (row operators, row sources): values need not be objects. */
  records(recs: readonly Rec[], fromBatch: (r: readonly Rec[]) => RecordBatch): Uint8Array[] {
    if (recs.length === 0) return [];
    const b = fromBatch(recs);
    const src: Source = {
      n: recs.length,
      ts: (i) => recs[i].ts,
      key: (i) => recs[i].key ?? null,
      prov: (i) => recs[i].prov,
      headers: (i) => recs[i].headers,
      nonObject: (i) => nonObjectOf(recs[i].value),
      fields: b.fields.map((name) => {
        const col = b.column(name) as Column;
        return { name, type: col.type, col };
      }),
      absent(i, f) {
        const v = recs[i].value;
        return v === null || typeof v !== 'object' || !Object.hasOwn(v, f);
      },
    };
    return this.encode(src);
  }

  /** Encodes one control event (the version-1 line of a watermark, barrier or end event). */
  control(line: string): Uint8Array[] {
    const fields = this.plans.map((p) => ({ name: p.name, type: p.kappaType, col: NULL1 }));
    return this.encode({
      n: 1,
      ts: () => null,
      key: () => null,
      prov: () => undefined,
      headers: () => undefined,
      nonObject: () => undefined,
      fields,
      absent: () => false,
      event: line,
    });
  }

  /** The end-of-stream marker closing the current segment (write it after the end event). */
  finish(): Uint8Array[] {
    if (this.signature === undefined) return [];
    this.signature = undefined;
    return [EOS];
  }

  private encode(s: Source): Uint8Array[] {
    const n = s.n;
    // Plan each value field's encoding: the current segment's when its values fit.
    const current = new Map(this.plans.map((p) => [p.name, p]));
    const plans: Plan[] = [];
    for (const f of s.fields) {
      const prev = current.get(f.name);
      const cands: Enc[] = [];
      if (prev && prev.kappaType === f.type) cands.push(prev.enc);
      cands.push(preferred(f.type), 'json');
      let enc: Enc = 'json';
      for (const c of cands) {
        let ok = true;
        // A typed column (Parquet) holds only values of its type: no per-value check.
        if (c !== 'json' && !(f.col.typed && c === preferred(f.type)))
          for (let i = 0; i < n; i++) {
            if (f.col.isNull(i)) continue;
            if (!fits(c, f.col.get(i))) {
              ok = false;
              break;
            }
          }
        if (ok) {
          enc = c;
          break;
        }
      }
      plans.push({ name: f.name, kappaType: f.type, enc });
    }
    // A control row keeps the segment's columns.
    const control = s.event !== undefined && this.signature !== undefined;
    if (control) plans.splice(0, plans.length, ...this.plans);

    const has = { prov: false, headers: false, value: false, missing: false };
    // A complete batch without provenance and headers has no per-row facts but its key.
    const keysOnly = s.complete === true && s.noRowFacts === true;
    // ... and with its times and keys as arrays, no per-row call at all (nor arrays for them).
    const noRowLoop = keysOnly && s.tsArray !== undefined && s.keyDict !== undefined;
    const rowArray = <T>(): T[] => (noRowLoop ? [] : new Array(n));
    const ts = rowArray<number | null>();
    const key = rowArray<string | null>();
    const prov = rowArray<string | null>();
    const headers = rowArray<string | null>();
    const value = rowArray<string | null>();
    for (let i = 0; i < n && !noRowLoop; i++) {
      if (!s.tsArray) ts[i] = s.ts(i);
      key[i] = s.key(i);
      if (keysOnly) continue;
      const p = s.prov(i);
      prov[i] = p === undefined ? null : JSON.stringify(p);
      const h = s.headers(i);
      headers[i] = h === undefined ? null : JSON.stringify(h);
      const v = s.nonObject(i);
      value[i] = v === undefined ? null : JSON.stringify(v);
      if (p !== undefined) has.prov = true;
      if (h !== undefined) has.headers = true;
      if (v !== undefined) has.value = true;
    }
    const lacks: (string[] | undefined)[] = [];
    const byName = new Map(s.fields.map((f) => [f.name, f]));
    const valueCols: {
      name: string;
      type: DataType;
      vals: unknown[];
      md: Map<string, string>;
      col?: FColumn<unknown>;
    }[] = [];
    for (const p of plans) {
      const f = byName.get(p.name);
      const numeric = p.enc === 'float64' || p.enc === 'int64' || p.enc === 'timestamp';
      const fast =
        f && s.complete && s.event === undefined && f.col.typed ? typedColumn(p, f.col) : undefined;
      if (fast) {
        const md = new Map([['kappa.type', p.kappaType]]);
        valueCols.push({
          name: p.name.startsWith('$') ? `$${p.name}` : p.name,
          type: fast.type,
          vals: [],
          md,
          col: fast,
        });
        continue;
      }
      const vals: unknown[] = numeric ? [] : new Array(n);
      const cells: (number | string | null)[] = numeric ? new Array(n) : [];
      for (let i = 0; i < n; i++) {
        if (!f || s.event !== undefined || f.col.isNull(i)) {
          if (numeric) cells[i] = null;
          else vals[i] = null;
          if (f && s.event === undefined && s.nonObject(i) === undefined && s.absent(i, p.name)) {
            const l = lacks[i] ?? [];
            l.push(p.name);
            lacks[i] = l;
            has.missing = true;
          }
          continue;
        }
        const v = f.col.get(i);
        if (numeric) cells[i] = v as number | string;
        else vals[i] = p.enc === 'json' ? JSON.stringify(v) : v;
      }
      const md = new Map([['kappa.type', p.kappaType]]);
      if (p.enc === 'json') md.set('kappa.encoding', 'json');
      const type = arrowType(p);
      valueCols.push({
        name: p.name.startsWith('$') ? `$${p.name}` : p.name,
        type,
        vals,
        md,
        col: numeric ? numericColumn(type, cells, p.enc === 'float64') : undefined,
      });
    }
    // $prov, $headers, $value and $missing are there only when a row needs them (they would cost
    // 4 bytes of offsets per row each); a control row keeps the segment's set.
    if (control) Object.assign(has, this.optional);
    const signature = JSON.stringify([plans.map((p) => [p.name, p.kappaType, p.enc]), has]);
    const out: Uint8Array[] = [];
    const newSegment = signature !== this.signature;
    if (newSegment && this.signature !== undefined) out.push(EOS);
    this.signature = signature;
    this.plans = plans;
    this.optional = { ...has };

    const fields: Field[] = [];
    const columns: FColumn<unknown>[] = [];
    const add = (
      name: string,
      type: DataType,
      values: unknown[],
      metadata?: Map<string, string>,
      col?: FColumn<unknown>,
    ) => {
      fields.push({ name, type, nullable: true, metadata: metadata ?? new Map() });
      columns.push(col ?? columnFromArray(values, type));
    };
    if (s.event === undefined) add(EVENT, utf8(), [], undefined, nullUtf8(n));
    else add(EVENT, utf8(), new Array(n).fill(s.event));
    const tsType = timestamp(TimeUnit.MILLISECOND, 'UTC');
    const tsInt64 = s.tsArray && s.event === undefined ? int64Of(s.tsArray, s.fields) : undefined;
    add(
      TS,
      tsType,
      [],
      undefined,
      tsInt64
        ? singleBatchColumn(tsType, n, 0, new Uint8Array(0), tsInt64)
        : s.tsArray
          ? float64Column(tsType, s.tsArray, false)
          : numericColumn(tsType, ts, false),
    );
    add(
      KEY,
      utf8(),
      [],
      undefined,
      noRowLoop && s.keyDict ? utf8FromDictionary(s.keyDict, n) : utf8Column(key),
    );
    if (has.prov) add(PROV, utf8(), [], undefined, utf8Column(prov));
    if (has.headers) add(HEADERS, utf8(), [], undefined, utf8Column(headers));
    if (has.value) add(VALUE, utf8(), [], undefined, utf8Column(value));
    if (has.missing)
      add(
        MISSING,
        utf8(),
        Array.from({ length: n }, (_, i) => (lacks[i] === undefined ? null : JSON.stringify(lacks[i]))),
      );
    for (const c of valueCols) add(c.name, c.type, c.vals, c.md, c.col);
    const metadata = new Map([
      [
        'kappa',
        JSON.stringify({ kappa: ARROW_PROTOCOL_VERSION, schema: this.schema, pipeline: this.pipeline }),
      ],
    ]);
    const table = new Table({ fields, metadata }, columns);
    // The pieces flechette writes (message headers, padding, the columns' own buffers), not one
    // buffer they are copied into: the writer copies them once, into what it writes.
    const sink = new PieceSink();
    tableToIPC(table, { format: 'stream', sink });
    const pieces = sink.messages(newSegment);
    if (pieces) {
      for (const p of pieces) out.push(p);
      return out;
    }
    const bytes = Buffer.concat(sink.pieces);
    // Keep the schema message only at the start of a segment; drop the table's own EOS.
    let pos = 0;
    while (pos < bytes.length) {
      const f = frameMessage(bytes, pos);
      if ('need' in f) throw new Error('internal: flechette wrote an incomplete IPC message');
      if (f.message && (f.message.kind !== MessageKind.Schema || newSegment)) out.push(f.message.bytes);
      pos += f.size;
    }
    return out;
  }
}

const TWO32 = 4294967296;

/**
 * A flechette IPC sink (`Sink`: write, pad, finish) that keeps the pieces as they are written.
 * flechette writes each message's header (continuation, length, flatbuffer) as one piece, then
 * padding, then the body buffers; the stream format ends with the EOS marker as one piece.
 */
class PieceSink {
  readonly pieces: Uint8Array[] = [];
  write(bytes: Uint8Array): void {
    this.pieces.push(bytes);
  }
  pad(byteCount: number): void {
    if (byteCount > 0) this.pieces.push(new Uint8Array(byteCount));
  }
  finish(): null {
    return null;
  }

  /**
   * The pieces without the table's trailing EOS marker and, unless `withSchema`, without the
   * schema message in front; undefined when the pieces do not have the expected shape (the caller
   * then frames the concatenated bytes itself).
   */
  messages(withSchema: boolean): Uint8Array[] | undefined {
    const p = this.pieces;
    const last = p[p.length - 1];
    if (p.length < 2 || last.length !== 8 || !isEos(last)) return undefined;
    let from = 0;
    if (!withSchema) {
      const h = p[0];
      if (h.length < 8) return undefined;
      const dv = new DataView(h.buffer, h.byteOffset, h.length);
      if (dv.getUint32(0, true) !== CONTINUATION) return undefined;
      const size = 8 + dv.getInt32(4, true); // a schema message has no body
      let bytes = 0;
      while (from < p.length - 1 && bytes < size) bytes += p[from++].length;
      if (bytes !== size) return undefined;
    }
    return p.slice(from, p.length - 1);
  }
}

function isEos(b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (b[i] !== EOS[i]) return false;
  return true;
}

/**
 * A float64 or 64-bit integer (int64, timestamp) column built straight into a typed array, with a
 * validity bitmap: no BigInt per value for integers within ±(2^53 - 1) (the two 32-bit halves are
 * written through an Int32Array view, little-endian); decimal strings (int64 beyond that) go
 * through BigInt, exactly.
 */
function numericColumn(
  type: DataType,
  cells: readonly (number | string | null)[],
  float: boolean,
): FColumn<unknown> {
  const n = cells.length;
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  let values: Float64Array | BigInt64Array;
  if (float) {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = cells[i];
      if (v === null) nulls++;
      else {
        a[i] = v as number;
        validity[i >> 3] |= 1 << (i & 7);
      }
    }
    values = a;
  } else {
    const a = new BigInt64Array(n);
    const w = new Int32Array(a.buffer);
    for (let i = 0; i < n; i++) {
      const v = cells[i];
      if (v === null) {
        nulls++;
        continue;
      }
      validity[i >> 3] |= 1 << (i & 7);
      if (typeof v === 'string') a[i] = BigInt(v);
      else {
        const hi = Math.floor(v / TWO32);
        w[2 * i] = (v - hi * TWO32) | 0;
        w[2 * i + 1] = hi;
      }
    }
    values = a;
  }
  return singleBatchColumn(type, n, nulls, validity, values);
}

/**
 * The Arrow column of a typed batch column (`Column.typed`) built from its typed arrays: numbers
 * from `float64()` (NaN: null), strings from `dictionary()` codes; undefined where the column has
 * no such view (int64 beyond ±2^53, booleans), which the per-value path then encodes.
 */
function typedColumn(p: Plan, col: Column): FColumn<unknown> | undefined {
  if (p.enc === 'int64' || p.enc === 'timestamp') {
    // Arrow's own int64 buffer (Parquet): written as it is, no conversion.
    const b = col.int64?.();
    if (b)
      return singleBatchColumn(
        arrowType(p),
        col.length,
        b.nulls,
        b.validity ?? new Uint8Array(0),
        b.values.length === col.length ? b.values : b.values.subarray(0, col.length),
      );
  }
  if (p.enc === 'float64' || p.enc === 'int64' || p.enc === 'timestamp') {
    const f = col.float64()?.subarray(0, col.length);
    return f ? float64Column(arrowType(p), f, p.enc === 'float64') : undefined;
  }
  if (p.enc !== 'string') return undefined;
  const dict = col.dictionary();
  if (!dict) return undefined;
  const n = col.length;
  const d = { codes: dict.codes.subarray(0, n), values: dict.values };
  let nulls = 0;
  for (let i = 0; i < n; i++) if (d.codes[i] < 0) nulls++;
  let codes = d.codes;
  const validity = new Uint8Array(nulls > 0 ? (n + 7) >> 3 : 0);
  if (nulls > 0) {
    codes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = d.codes[i];
      if (c >= 0) {
        codes[i] = c;
        validity[i >> 3] |= 1 << (i & 7);
      }
    }
  }
  const type = arrowType(p);
  const values = d.values.length > 0 ? d.values : [''];
  const DictBatch = batchType(type) as unknown as new (
    o: object,
  ) => Batch<unknown> & {
    setDictionary(c: FColumn<unknown>): Batch<unknown>;
  };
  const batch = new DictBatch({
    length: n,
    nullCount: nulls,
    type,
    validity,
    values: codes,
  }).setDictionary(dictionaryValues(values, (type as ReturnType<typeof dictionary>).dictionary));
  return new FlechetteColumn<unknown>([batch], type);
}

/**
 * A utf8 column of strings (null: null), built without a builder: one UTF-8 encode of all strings
 * joined (instead of one TextEncoder call per string, which cost 0.4 s per 424k keys) when the
 * text is ASCII (byte length = length, so the offsets are the string lengths); other text goes
 * through flechette's builder, string by string (joining could pair surrogates of two strings).
 */
function utf8Column(values: readonly (string | null)[]): FColumn<unknown> {
  const n = values.length;
  const type = utf8();
  const offsets = new Int32Array(n + 1);
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  let chars = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v == null) nulls++;
    else {
      validity[i >> 3] |= 1 << (i & 7);
      chars += v.length;
    }
  }
  const joined = nulls === n ? '' : (values.filter((v) => v != null) as string[]).join('');
  const bytes = Buffer.from(joined, 'utf8');
  if (bytes.length !== chars) return columnFromArray(values as (string | null)[], type);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v != null) off += v.length;
    offsets[i + 1] = off;
  }
  return utf8FromBuffers(
    n,
    nulls,
    validity,
    offsets,
    new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
  );
}

/**
 * A utf8 column of one batch from its Arrow buffers, without a builder: `offsets` (n + 1 Int32
 * byte offsets into `values`), `validity` (LSB bit per row, 1 = present; left out when `nulls` is 0).
 */
function utf8FromBuffers(
  n: number,
  nulls: number,
  validity: Uint8Array,
  offsets: Int32Array,
  values: Uint8Array,
): FColumn<unknown> {
  const type = utf8();
  const B = batchType(type) as unknown as new (o: object) => Batch<unknown>;
  const batch = new B({
    length: n,
    nullCount: nulls,
    type,
    validity: nulls > 0 ? validity : new Uint8Array(0),
    offsets,
    values,
  });
  return new FlechetteColumn<unknown>([batch], type);
}

const ASCII_ENCODER = new TextEncoder();

/**
 * The values column of a string dictionary (`type`: the dictionary type's value type, the object
 * flechette keys dictionary ids by), byte for byte what flechette's `columnFromArray` builds — offsets
 * padded to 8 bytes, values to `align64(bytes + 1)`, zero-filled — but with one UTF-8 encode of all
 * values joined, written straight into the buffer, instead of one TextEncoder call per string (a
 * batch of 16,384 NDJSON rows has ~1,300 distinct date texts; 0.15 s of 3M rows' ingest went to
 * encoding them one by one). Only when the text is ASCII (byte offsets = string lengths); otherwise
 * flechette's builder, string by string.
 */
export function dictionaryValues(values: readonly string[], type: DataType): FColumn<unknown> {
  const n = values.length;
  const joined = values.join('');
  const chars = joined.length;
  // flechette's BinaryBuilder: values.array(pos + 1), offsets.array(n + 1), both 64-bit aligned.
  const bytes = new Uint8Array((chars + 1 + 7) & -8);
  const { read, written } = ASCII_ENCODER.encodeInto(joined, bytes);
  if (read !== chars || written !== chars) return columnFromArray(values as string[], type);
  const offsets = new Int32Array((n + 1 + 1) & -2);
  let off = 0;
  for (let i = 0; i < n; i++) {
    off += values[i].length;
    offsets[i + 1] = off;
  }
  const B = batchType(type) as unknown as new (o: object) => Batch<unknown>;
  const batch = new B({ length: n, nullCount: 0, type, validity: new Uint8Array(0), offsets, values: bytes });
  return new FlechetteColumn<unknown>([batch], type);
}

/**
 * The int64 buffer (epoch ms) of a timestamp value column whose `float64()` is `ts` itself (event
 * time read from that column, source-columns.ts), so `$ts` is written from it as it is; undefined
 * when no column is (or it has nulls).
 */
function int64Of(ts: Float64Array, fields: Source['fields']): BigInt64Array | undefined {
  for (const f of fields) {
    if ((f.type !== 'timestamp' && f.type !== 'timestamptz') || !f.col.int64 || !f.col.typed) continue;
    if (f.col.float64() !== ts) continue;
    const b = f.col.int64();
    if (b && b.nulls === 0) return b.values.length === ts.length ? b.values : b.values.subarray(0, ts.length);
  }
  return undefined;
}

/**
 * A utf8 column from dictionary codes (-1: null; the record keys of a typed key column): the
 * distinct strings are UTF-8 encoded once, all together (one `encodeInto` of their join when it is
 * ASCII, so that byte offsets are string offsets; else one `Buffer.from` each), and each row gets
 * its string's bytes copied from there; `n` nulls is `nullUtf8`. (A `Buffer` per distinct string
 * cost about 2x the time of the whole column at ~220 keys per 4,096-row batch, the window's output.)
 */
function utf8FromDictionary(
  d: { codes: Int32Array; values: readonly string[] },
  n: number,
): FColumn<unknown> {
  const m = d.values.length;
  if (m === 0) return nullUtf8(n); // no key at all (no --key-field)
  const codes = d.codes;
  // all: the encoded strings back to back; start[j], len[j]: string j's bytes in it
  const start = new Int32Array(m);
  const len = new Int32Array(m);
  const joined = d.values.join('');
  let all = new Uint8Array(joined.length);
  const { read, written } = ASCII_ENCODER.encodeInto(joined, all);
  if (read === joined.length && written === joined.length) {
    let o = 0;
    for (let j = 0; j < m; j++) {
      start[j] = o;
      len[j] = d.values[j].length;
      o += len[j];
    }
  } else {
    const enc = d.values.map((v) => Buffer.from(v, 'utf8'));
    all = Buffer.concat(enc);
    let o = 0;
    for (let j = 0; j < m; j++) {
      start[j] = o;
      len[j] = enc[j].length;
      o += len[j];
    }
  }
  const offsets = new Int32Array(n + 1);
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c < 0) nulls++;
    else {
      off += len[c];
      validity[i >> 3] |= 1 << (i & 7);
    }
    offsets[i + 1] = off;
  }
  if (nulls === n) return nullUtf8(n);
  const bytes = new Uint8Array(off);
  for (let i = 0; i < n; i++) {
    const c = codes[i];
    if (c < 0) continue;
    let at = offsets[i];
    const end = start[c] + len[c];
    for (let k = start[c]; k < end; k++) bytes[at++] = all[k];
  }
  return utf8FromBuffers(n, nulls, validity, offsets, bytes);
}

/** A utf8 column of `n` nulls, built without a builder (the `$event` column of a record batch). */
function nullUtf8(n: number): FColumn<unknown> {
  const type = utf8();
  const B = batchType(type) as unknown as new (o: object) => Batch<unknown>;
  const batch = new B({
    length: n,
    nullCount: n,
    type,
    validity: new Uint8Array((n + 7) >> 3),
    offsets: new Int32Array(n + 1),
    values: new Uint8Array(0),
  });
  return new FlechetteColumn<unknown>([batch], type);
}

/**
 * A float64 or 64-bit integer (int64, timestamp) column from a Float64Array (NaN: null), as
 * `numericColumn` builds it from cells; integers must be within ±(2^53 − 1).
 */
function float64Column(type: DataType, f: Float64Array, float: boolean): FColumn<unknown> {
  const n = f.length;
  // Nulls (NaN) first: a column without any (the common case) needs no validity bitmap, and the
  // conversion below no test per value.
  let nulls = 0;
  for (let i = 0; i < n; i++) if (Number.isNaN(f[i])) nulls++;
  let validity = new Uint8Array(0);
  if (nulls > 0) {
    validity = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++) if (!Number.isNaN(f[i])) validity[i >> 3] |= 1 << (i & 7);
  }
  if (float) return singleBatchColumn(type, n, nulls, validity, f);
  // int64: the high word floor(v / 2^32), the low word the rest; a null's slot stays 0.
  const a = new BigInt64Array(n);
  const w = new Int32Array(a.buffer);
  for (let i = 0; i < n; i++) {
    const v = f[i];
    if (Number.isNaN(v)) continue;
    const hi = Math.floor(v / TWO32);
    w[2 * i] = (v - hi * TWO32) | 0;
    w[2 * i + 1] = hi;
  }
  return singleBatchColumn(type, n, nulls, validity, a);
}

function nonObjectOf(v: unknown): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? undefined : v;
}

/** A one-row all-null column (the value columns of a control row). */
const NULL1: Column = {
  type: 'json',
  length: 1,
  get: () => null,
  isNull: () => true,
  float64: () => undefined,
  dictionary: () => undefined,
};

/** An Arrow column of one batch: `validity` is dropped when no value is null. */
function singleBatchColumn(
  type: DataType,
  n: number,
  nulls: number,
  validity: Uint8Array,
  values: Float64Array | BigInt64Array,
): FlechetteColumn<unknown> {
  const batch = new Batch<unknown>({
    length: n,
    nullCount: nulls,
    type,
    validity: nulls > 0 ? validity : new Uint8Array(0),
    values,
  });
  return new FlechetteColumn<unknown>([batch], type);
}
