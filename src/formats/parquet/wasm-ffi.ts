/**
 * Reads a record batch that parquet-wasm decoded straight out of WebAssembly memory through the
 * Arrow C Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html), instead of
 * having it written as an IPC stream in WebAssembly, copied out and parsed again (`intoIPCStream`
 * + flechette's `tableFromIPC`). Each buffer is copied out once (`slice`), so the columns stay
 * valid after the WebAssembly table is freed and whatever the WebAssembly memory does next.
 *
 * Measured on flights-3m (11 row groups, 5 columns): 15–20 ms of CPU to take the columns out,
 * against 60–70 ms for the IPC round trip, and no 27 MB IPC buffer per row group to collect.
 *
 * Only the Arrow types `DecodedColumn.of` (columns.ts) takes are read; any other type gives
 * undefined for its column (the caller then reads the row group another way).
 *
 * Struct layouts on wasm32 (pointers are 4 bytes, int64 fields 8-byte aligned):
 * - ArrowSchema: format@0, name@4, metadata@8, flags@16 (i64), n_children@24 (i64),
 *   children@32, dictionary@36, release@40, private_data@44.
 * - ArrowArray: length@0, null_count@8, offset@16, n_buffers@24, n_children@32 (all i64),
 *   buffers@40, children@44, dictionary@48, release@52, private_data@56.
 */
import {
  type ArrowData,
  epochMs,
  T_BOOL,
  T_DICTIONARY,
  T_FLOAT,
  T_INT,
  T_LARGE_UTF8,
  T_TIMESTAMP,
  T_UTF8,
  utf8Codes,
} from './columns.js';

/** Integer formats of the C Data Interface: bit width, signedness, typed-array constructor. */
const INTS: Record<string, [number, boolean]> = {
  c: [8, true],
  C: [8, false],
  s: [16, true],
  S: [16, false],
  i: [32, true],
  I: [32, false],
  l: [64, true],
  L: [64, false],
};

/** Timestamp format prefixes (`tss:`, `tsm:`, `tsu:`, `tsn:`) to flechette's TimeUnit. */
const TS_UNITS: Record<string, number> = { s: 0, m: 1, u: 2, n: 3 };

type Typed =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A reader over one WebAssembly memory: the C structs and their buffers. */
class Mem {
  private readonly dv: DataView;
  constructor(private readonly buf: ArrayBuffer) {
    this.dv = new DataView(buf);
  }
  u32(p: number): number {
    return this.dv.getUint32(p, true);
  }
  i64(p: number): number {
    return Number(this.dv.getBigInt64(p, true));
  }
  cstr(p: number): string {
    if (p === 0) return '';
    const b = new Uint8Array(this.buf, p);
    let e = 0;
    while (b[e] !== 0) e++;
    return new TextDecoder().decode(b.subarray(0, e));
  }
  /** The memory itself (views into it are valid only until the batch is freed). */
  get memory(): ArrayBuffer {
    return this.buf;
  }
  /** A copy of `bytes` bytes at pointer `p` (an empty buffer for a null pointer or no bytes). */
  copy(p: number, bytes: number): ArrayBuffer {
    if (p === 0 || bytes <= 0) return new ArrayBuffer(0);
    return this.buf.slice(p, p + bytes);
  }
}

/** A child array's C structs as read from memory. */
interface CArray {
  length: number;
  nullCount: number;
  offset: number;
  buffers: number[];
  dictionary: number;
}

function readArray(m: Mem, p: number): CArray {
  const nBuffers = m.i64(p + 24);
  const bp = m.u32(p + 40);
  const buffers: number[] = [];
  for (let b = 0; b < nBuffers; b++) buffers.push(m.u32(bp + 4 * b));
  return {
    length: m.i64(p),
    nullCount: m.i64(p + 8),
    offset: m.i64(p + 16),
    buffers,
    dictionary: m.u32(p + 48),
  };
}

/** The validity bitmap of `a` (undefined without nulls), copied: bits 0 .. offset + length - 1. */
function validityOf(m: Mem, a: CArray): Uint8Array | undefined {
  if (a.nullCount === 0 || a.buffers[0] === 0) return undefined;
  return new Uint8Array(m.copy(a.buffers[0], (a.offset + a.length + 7) >> 3));
}

/**
 * One column's `ArrowData` (the shape columns.ts reads), or undefined for a type it does not take.
 * Rows are `offset .. offset + length - 1` of the returned buffers (`CArray.offset`).
 * @param stringCodes a utf8 array gets its dictionary codes (`ArrowData.codes`) instead of copies
 *   of its offsets and bytes (false for a dictionary's values, which are read as strings)
 */
function dataOf(
  m: Mem,
  schemaPtr: number,
  arrayPtr: number,
  stringCodes = true,
): { data: ArrowData; offset: number } | undefined {
  const format = m.cstr(m.u32(schemaPtr));
  const a = readArray(m, arrayPtr);
  const dictSchema = m.u32(schemaPtr + 36);
  const end = a.offset + a.length;
  const validity = validityOf(m, a);
  if (dictSchema !== 0) {
    // Dictionary-encoded: `format` is the index type; the values are utf8 / large utf8.
    const idx = INTS[format];
    if (idx?.[0] !== 32 || !idx[1] || a.dictionary === 0) return undefined;
    const dict = dataOf(m, dictSchema, a.dictionary, false);
    if (dict?.offset !== 0) return undefined;
    const dt = dict.data.type.typeId;
    if (dt !== T_UTF8 && dt !== T_LARGE_UTF8) return undefined;
    const values = new Int32Array(m.copy(a.buffers[1], 4 * end));
    const d = dict.data;
    return {
      offset: a.offset,
      data: {
        length: a.length,
        nullCount: a.nullCount,
        type: { typeId: T_DICTIONARY },
        validity,
        values,
        dictionary: { data: [d], toArray: () => utf8Strings(d) },
      },
    };
  }
  let type: ArrowData['type'];
  let values: Typed;
  let offsets: Int32Array | BigInt64Array | undefined;
  let ms: Float64Array | undefined;
  let codes: ArrowData['codes'];
  const int = INTS[format];
  if (int) {
    const [bits, signed] = int;
    type = { typeId: T_INT, bitWidth: bits, signed };
    values = intArray(m.copy(a.buffers[1], (bits >> 3) * end), bits, signed);
  } else if (format === 'f' || format === 'g') {
    type = { typeId: T_FLOAT, precision: format === 'f' ? 1 : 2 };
    const buf = m.copy(a.buffers[1], (format === 'f' ? 4 : 8) * end);
    values = format === 'f' ? new Float32Array(buf) : new Float64Array(buf);
  } else if (format === 'b') {
    type = { typeId: T_BOOL };
    values = new Uint8Array(m.copy(a.buffers[1], (end + 7) >> 3));
  } else if (format === 'u' || format === 'U') {
    const large = format === 'U';
    type = { typeId: large ? T_LARGE_UTF8 : T_UTF8 };
    const po = a.buffers[1];
    const step = large ? 2 : 1;
    if (stringCodes && end > 0 && po !== 0 && po % (4 * step) === 0 && a.buffers[2] !== 0) {
      // Every reader of a string column reads its dictionary codes: they are computed here for
      // the whole array, straight from WebAssembly memory (each distinct string decoded once), and
      // neither the offsets nor the bytes are copied out. Slices renumber them (`sliceCodes`).
      const mem = m.memory;
      const off = new Int32Array(mem, po, (end + 1) * step);
      const last = off[end * step];
      codes = utf8Codes(new Uint8Array(mem, a.buffers[2], last), off, step, 0, end, validity);
      values = new Uint8Array(0);
    } else {
      offsets = large
        ? new BigInt64Array(m.copy(a.buffers[1], 8 * (end + 1)))
        : new Int32Array(m.copy(a.buffers[1], 4 * (end + 1)));
      const bytes = large ? Number((offsets as BigInt64Array)[end]) : (offsets as Int32Array)[end];
      values = new Uint8Array(m.copy(a.buffers[2], bytes));
    }
  } else if (format.startsWith('ts') && format[3] === ':' && TS_UNITS[format[2]] !== undefined) {
    const unit = TS_UNITS[format[2]];
    type = { typeId: T_TIMESTAMP, unit };
    const p = a.buffers[1];
    if (unit !== 1 && end > 0 && p !== 0 && p % 8 === 0) {
      // Not ms: the epoch ms are what every reader of the column uses (event time, rows, the
      // encoders' int64 form), so they are computed here, straight from WebAssembly memory, and
      // the raw values are not copied out.
      const mem = m.memory;
      ms = epochMs(new Int32Array(mem, p, 2 * end), new BigInt64Array(mem, p, end), 0, end, unit, validity);
      values = new BigInt64Array(0);
    } else values = new BigInt64Array(m.copy(p, 8 * end));
  } else return undefined;
  return {
    offset: a.offset,
    data: {
      length: a.length,
      nullCount: a.nullCount,
      type,
      validity,
      values: values as unknown as ArrowData['values'],
      offsets,
      ms,
      codes,
    },
  };
}

function intArray(buf: ArrayBuffer, bits: number, signed: boolean): Typed {
  switch (bits) {
    case 8:
      return signed ? new Int8Array(buf) : new Uint8Array(buf);
    case 16:
      return signed ? new Int16Array(buf) : new Uint16Array(buf);
    case 32:
      return signed ? new Int32Array(buf) : new Uint32Array(buf);
    default:
      return signed ? new BigInt64Array(buf) : new BigUint64Array(buf);
  }
}

/** The strings of a utf8 / large utf8 array (null entries as null). */
export function utf8Strings(d: ArrowData): (string | null)[] {
  const o = d.offsets as NonNullable<ArrowData['offsets']>;
  const step = o.BYTES_PER_ELEMENT === 8 ? 2 : 1;
  const off = new Int32Array(o.buffer, o.byteOffset, o.length * step);
  const bytes = d.values as unknown as Uint8Array;
  const dec = new TextDecoder();
  const v = d.validity;
  const out: (string | null)[] = new Array(d.length);
  for (let i = 0; i < d.length; i++)
    out[i] =
      d.nullCount > 0 && v && !((v[i >> 3] >> (i & 7)) & 1)
        ? null
        : dec.decode(bytes.subarray(off[i * step], off[(i + 1) * step]));
  return out;
}

/** The top-level columns of one record batch, by name, with the row offset of each. */
export type FfiColumns = Map<string, { data: ArrowData; offset: number } | undefined>;

/**
 * The columns of the record batch at `arrayPtr` (a struct array, as `FFIStream.arrayAddr` gives)
 * whose schema is at `schemaPtr`, copied out of `memory`. A column of a type this module does not
 * read maps to undefined.
 * @returns the columns and the batch's row count, or undefined when the batch is not a struct array
 */
export function readFfiBatch(
  memory: ArrayBuffer,
  schemaPtr: number,
  arrayPtr: number,
): { rows: number; columns: FfiColumns } | undefined {
  const m = new Mem(memory);
  if (m.cstr(m.u32(schemaPtr)) !== '+s') return undefined;
  const nChildren = m.i64(schemaPtr + 24);
  const sch = m.u32(schemaPtr + 32);
  const top = readArray(m, arrayPtr);
  if (m.i64(arrayPtr + 32) !== nChildren || top.offset !== 0) return undefined;
  const arr = m.u32(arrayPtr + 44);
  const columns: FfiColumns = new Map();
  for (let c = 0; c < nChildren; c++) {
    const cs = m.u32(sch + 4 * c);
    columns.set(m.cstr(m.u32(cs + 4)), dataOf(m, cs, m.u32(arr + 4 * c)));
  }
  return { rows: top.length, columns };
}

/** parquet-wasm's module namespace (its node build). */
export type ParquetWasm = typeof import('parquet-wasm');

/**
 * Loads parquet-wasm (its node build, which compiles its 4.8 MB WebAssembly module with a
 * synchronous `new WebAssembly.Module` when imported; V8 compiles functions lazily, so that is
 * about 25 ms of the importing thread's CPU). Measured against the ESM build initialised with a
 * module from the asynchronous `WebAssembly.compile` (issue 14): 29-39 ms of the main thread's CPU
 * and 41-108 ms with the event loop blocked, against 23-33 ms for this build, so this one is kept.
 * Resolves to undefined when the package cannot be loaded.
 */
export function loadParquetWasm(): Promise<ParquetWasm | undefined> {
  return import('parquet-wasm').catch(() => undefined);
}

/**
 * Awaits a parquet-wasm promise, turning a WebAssembly trap raised outside it into its rejection.
 * A panic while decoding corrupt pages (RuntimeError: unreachable) is thrown from a wasm-bindgen
 * callback in a promise job, not through the promise the caller holds: it would surface as an
 * unhandled rejection or uncaught exception and end the process (or the worker thread), and the
 * promise would never settle. While `p` is pending, such a trap rejects it instead; any other error
 * is re-raised as it would have been.
 */
export function guardWasm<T>(p: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (e: unknown) => {
      if (e instanceof WebAssembly.RuntimeError) {
        done();
        reject(e);
        return;
      }
      done();
      process.nextTick(() => {
        throw e;
      });
    };
    const done = () => {
      process.removeListener('uncaughtException', onError);
      process.removeListener('unhandledRejection', onError);
    };
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    p.then(
      (v) => {
        done();
        resolve(v);
      },
      (e) => {
        done();
        reject(e);
      },
    );
  });
}
