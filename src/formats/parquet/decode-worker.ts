/**
 * Parquet row-group decode in a worker thread (issue 14, "Both cores"): the thread opens a local
 * file itself, decodes the row groups the main thread asks for with parquet-wasm and converts them
 * out of WebAssembly memory exactly as the in-thread path does (`readFfiBatch`: dictionary codes of
 * string columns, epoch ms of timestamps), then posts the plain typed arrays with a transfer list
 * (the big buffers move, they are not copied). The main thread rebuilds `ArrowData` from them
 * (`fromWire`) and `DecodedColumn`s as before (read.ts), so while it runs the operators and the
 * sink on row group g, this thread decodes g + 1.
 *
 * One thread per process, started by the first file that uses it (`startDecodeWorker`) and kept:
 * it holds the event loop open only while a request is pending (`ref`), so a finished, failed or
 * stopped stage exits as before (a request abandoned by a stopped reader is cancelled, which
 * `unref`s the thread at once). Requests are served one at a time, in order.
 *
 * Failure never surfaces as a new error here: a file the thread cannot open, a group it cannot
 * decode, a thread that died, each give a reply with `ok: false`, and the reader decodes that group
 * as it does without the thread (in-thread parquet-wasm, else hyparquet, whose values and error
 * locations the tests check), so every error reaches the user as before.
 *
 * Messages (structured clone): main -> thread `ReadRequest` | `CloseRequest`; thread -> main
 * `ReadReply`.
 */
import { open } from 'node:fs/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type ArrowData, sliceCodes } from './columns.js';
import { guardWasm, loadParquetWasm, type ParquetWasm, readFfiBatch, utf8Strings } from './wasm-ffi.js';

/** `ArrowData` as it crosses threads: no functions; a dictionary's values as `dict`. */
export type WireData = Omit<ArrowData, 'dictionary'> & { dict?: WireData };

/** One decoded column: its data and the row offset of its first row in the buffers. */
export interface WireColumn {
  data: WireData;
  offset: number;
}

/** Decode row group `group` (`rows` rows) of the local file `path`; `columns`: the projection. */
export interface ReadRequest {
  op: 'read';
  id: number;
  path: string;
  group: number;
  rows: number;
  columns: string[] | undefined;
  /** The reader cuts rows `first, first + sliceRows, …` into slices: their dictionaries are made here. */
  first: number;
  sliceRows: number;
}

/** Forget the file `path` (its parquet-wasm handle and file descriptor). */
export interface CloseRequest {
  op: 'close';
  path: string;
}

/**
 * The answer to a `ReadRequest`. `ok: false` with `retry: true`: the thread could not open the
 * file or the batch had an unexpected shape (decode it in the main thread as without the worker);
 * `retry: false`: parquet-wasm could not decode the group (corrupt data: hyparquet reads it and
 * locates the error).
 */
export type ReadReply =
  | { id: number; ok: true; rows: number; columns: [string, WireColumn | undefined][] }
  | { id: number; ok: false; retry: boolean; reason: string };

const MARK = 'kappa-parquet-decode';

/** Buffers of `d` (and of its dictionary) to move with the message, deduplicated into `out`. */
function buffersOf(d: WireData, out: Set<ArrayBuffer>): void {
  for (const a of [
    d.validity,
    d.values,
    d.offsets,
    d.ms,
    d.codes?.codes,
    ...(d.slices ?? []).map((x) => x.codes),
  ])
    if (a && a.buffer instanceof ArrayBuffer && a.buffer.byteLength > 0) out.add(a.buffer);
  if (d.dict) buffersOf(d.dict, out);
}

/** `ArrowData` as `wasm-ffi.ts` gives it, from its wire form. */
export function fromWire(d: WireData): ArrowData {
  if (!d.dict) return d;
  const { dict, ...rest } = d;
  const v = fromWire(dict);
  return { ...rest, dictionary: { data: [v], toArray: () => utf8Strings(v) } };
}

// ---------------------------------------------------------------------------------------------
// The thread's side.

type WasmFile = Awaited<ReturnType<ParquetWasm['ParquetFile']['fromFile']>>;

/** Runs in the worker thread: serves requests one at a time. */
function serve(): void {
  const port = parentPort;
  if (!port) return;
  const wasm = loadParquetWasm();
  const files = new Map<string, Promise<{ pf: WasmFile; close: () => Promise<void> } | undefined>>();
  let broken = false; // parquet-wasm trapped: its instance is not used again
  let queue: Promise<void> = Promise.resolve();

  const openFile = (path: string) => {
    let f = files.get(path);
    if (!f) {
      f = (async () => {
        const pw = await wasm;
        if (!pw) return undefined;
        const fh = await open(path, 'r').catch(() => undefined);
        if (!fh) return undefined;
        const { size } = await fh.stat();
        const read = async (a: number, b: number): Promise<ArrayBuffer> => {
          const end = Math.min(b, size);
          const u8 = new Uint8Array(Math.max(0, end - a));
          for (let got = 0; got < u8.length; ) {
            const { bytesRead } = await fh.read(u8, got, u8.length - got, a + got);
            if (bytesRead === 0) break;
            got += bytesRead;
          }
          return u8.buffer;
        };
        const blob = { size, slice: (a: number, b?: number) => ({ arrayBuffer: () => read(a, b ?? size) }) };
        try {
          const pf = await pw.ParquetFile.fromFile(blob as unknown as Blob);
          return { pf, close: () => fh.close() };
        } catch {
          await fh.close();
          return undefined;
        }
      })();
      files.set(path, f);
    }
    return f;
  };

  const decode = async (r: ReadRequest): Promise<{ reply: ReadReply; transfer: ArrayBuffer[] }> => {
    const fail = (retry: boolean, reason: string) => ({
      reply: { id: r.id, ok: false, retry, reason } as ReadReply,
      transfer: [],
    });
    if (broken) return fail(false, 'parquet-wasm trapped before');
    const f = await openFile(r.path);
    const pw = await wasm;
    if (!f || !pw) return fail(true, 'cannot open the file in the decode thread');
    let t: Awaited<ReturnType<WasmFile['read']>>;
    try {
      t = await guardWasm(f.pf.read({ rowGroups: [r.group], batchSize: r.rows, columns: r.columns }));
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) broken = true;
      return fail(false, (e as Error).message);
    }
    if (t.numBatches !== 1) {
      t.free();
      return fail(true, `${t.numBatches} batches`);
    }
    const ffi = t.intoFFI();
    let got: ReturnType<typeof readFfiBatch>;
    try {
      got = readFfiBatch(pw.wasmMemory().buffer as ArrayBuffer, ffi.schemaAddr(), ffi.arrayAddr(0));
    } catch {
      got = undefined;
    } finally {
      ffi.free();
    }
    if (!got) return fail(true, 'not one struct array');
    const set = new Set<ArrayBuffer>();
    const columns: [string, WireColumn | undefined][] = [];
    for (const [name, c] of got.columns) {
      if (!c) {
        columns.push([name, undefined]);
        continue;
      }
      const { dictionary, ...rest } = c.data;
      const data: WireData = dictionary ? { ...rest, dict: dictionary.data[0] as WireData } : rest;
      const whole = c.data.codes;
      if (whole) {
        // The slices' dictionaries (`DecodedColumn.dictionary`), so the reader's thread does not renumber.
        const slices: NonNullable<WireData['slices']>[number][] = [];
        for (let s = r.first; s < got.rows; s += r.sliceRows) {
          const d = sliceCodes(whole, c.offset + s, Math.min(r.sliceRows, got.rows - s));
          slices.push({ start: c.offset + s, codes: d.codes, values: d.values });
        }
        (data as { slices?: WireData['slices'] }).slices = slices;
      }
      buffersOf(data, set);
      columns.push([name, { data, offset: c.offset }]);
    }
    return { reply: { id: r.id, ok: true, rows: got.rows, columns }, transfer: [...set] };
  };

  port.on('message', (m: ReadRequest | CloseRequest) => {
    queue = queue.then(async () => {
      if (m.op === 'close') {
        const f = files.get(m.path);
        files.delete(m.path);
        const o = await f;
        try {
          if (o && !broken) o.pf.free();
        } catch {
          // a file still borrowed by a trapped read
        }
        await o?.close().catch(() => undefined);
        return;
      }
      let out: { reply: ReadReply; transfer: ArrayBuffer[] };
      try {
        out = await decode(m);
      } catch (e) {
        out = { reply: { id: m.id, ok: false, retry: true, reason: (e as Error).message }, transfer: [] };
      }
      port.postMessage(out.reply, out.transfer);
    });
  });
}

if (!isMainThread && (workerData as { mark?: string } | undefined)?.mark === MARK) serve();

// ---------------------------------------------------------------------------------------------
// The main thread's side.

let worker: Worker | undefined;
let failed = false;
let nextId = 1;
const pending = new Map<number, (r: ReadReply) => void>();

/**
 * Row groups the decode thread has decoded for this process (tests: proof the worker path was
 * taken), and the requests waiting for a reply (0 when nothing holds the process open).
 */
export const decodeWorkerStats = {
  groups: 0,
  get pending(): number {
    return pending.size;
  },
};

function failAll(reason: string): void {
  for (const [id, resolve] of pending) resolve({ id, ok: false, retry: true, reason });
  pending.clear();
}

function start(): Worker | undefined {
  try {
    const w = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData: { mark: MARK } });
    w.on('message', (r: ReadReply) => {
      const resolve = pending.get(r.id);
      if (!resolve) return; // cancelled
      pending.delete(r.id);
      if (pending.size === 0) w.unref();
      if (r.ok) decodeWorkerStats.groups++;
      resolve(r);
    });
    w.on('error', (e) => {
      failed = true;
      failAll(`decode thread failed: ${e.message}`);
    });
    w.on('exit', (code) => {
      failed = true;
      worker = undefined;
      failAll(`decode thread exited (code ${code})`);
    });
    w.unref();
    return w;
  } catch {
    failed = true;
    return undefined;
  }
}

/**
 * Starts the decode thread if it is not running (it then loads parquet-wasm while the main thread
 * reads the footer). Returns false when there is no thread (it could not start, or it died): the
 * caller decodes in its own thread.
 */
export function startDecodeWorker(): boolean {
  if (failed) return false;
  worker ??= start();
  return worker !== undefined;
}

/** A request in flight: its reply (never rejects) and a way to abandon it. */
export interface PendingRead {
  reply: Promise<ReadReply>;
  cancel(): void;
}

/**
 * Asks the decode thread for row group `group` (`rows` rows) of local file `path`, decoded to
 * columns (`columns`: a projection, or undefined for all), with string columns' dictionaries made
 * for the slices the caller will cut (rows from `first` in steps of `sliceRows`). The reply never rejects: a thread that
 * is not running, dies or cannot decode gives `ok: false`. `cancel()` drops the request (its reply
 * then never comes; the thread no longer holds the process open for it).
 */
export function requestGroup(
  path: string,
  group: number,
  rows: number,
  columns: string[] | undefined,
  first = 0,
  sliceRows = rows,
): PendingRead {
  const id = nextId++;
  const w = startDecodeWorker() ? worker : undefined;
  if (!w)
    return {
      reply: Promise.resolve({ id, ok: false, retry: true, reason: 'no decode thread' }),
      cancel() {},
    };
  const reply = new Promise<ReadReply>((resolve) => {
    pending.set(id, resolve);
    w.ref();
    try {
      w.postMessage({ op: 'read', id, path, group, rows, columns, first, sliceRows } satisfies ReadRequest);
    } catch (e) {
      pending.delete(id);
      if (pending.size === 0) w.unref();
      resolve({ id, ok: false, retry: true, reason: (e as Error).message });
    }
  });
  return {
    reply,
    cancel() {
      if (pending.delete(id) && pending.size === 0) w.unref();
    },
  };
}

/** Tells the decode thread to close `path` (after the requests already sent). */
export function closeInWorker(path: string): void {
  try {
    worker?.postMessage({ op: 'close', path } satisfies CloseRequest);
  } catch {
    // the thread is gone: nothing to close
  }
}
