/**
 * The main thread's side of part-worker.ts: one worker thread per process, started on the first
 * background part and kept for the process's life. It holds the event loop open only while a part
 * is being written (`ref` while jobs are pending, `unref` when none is), so a finished stage exits
 * as before and a pending part is never mistaken for a stall.
 */
import { Worker } from 'node:worker_threads';
import { ExitCode, KappaError, RuntimeError } from '../errors.js';
import type { WindowRowsCopy } from '../ops/window/snapshot-rows.js';
import type { OperatorSnapshotInput } from '../state/savepoint/write.js';
import { s3Config } from '../storage/s3-options.js';
import type { PartJob, PartResult } from './part-worker.js';

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve: (w: PartWriter) => void; reject: (e: Error) => void }>();

/** The thread that wrote a part: Node `threadId` (0 would be the main thread) and Linux task id. */
export interface PartWriter {
  threadId: number;
  tid?: number;
}

function failAll(e: Error): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
  worker = undefined;
}

function start(): Worker {
  const w = new Worker(new URL('./part-worker.js', import.meta.url));
  w.on('message', (r: PartResult) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (pending.size === 0) w.unref();
    if (r.ok) p.resolve({ threadId: r.threadId, tid: r.tid });
    else {
      const code = Object.values(ExitCode).includes(r.exitCode as ExitCode)
        ? (r.exitCode as ExitCode)
        : undefined;
      const err =
        code === undefined ? new RuntimeError(r.message, r.hint) : new KappaError(r.message, code, r.hint);
      err.name = r.name;
      p.reject(err);
    }
  });
  w.on('error', (e) => failAll(new RuntimeError(`checkpoint part writer thread failed: ${e.message}`)));
  w.on('exit', (code) => {
    if (pending.size > 0) failAll(new RuntimeError(`checkpoint part writer thread exited (code ${code})`));
    worker = undefined;
  });
  w.unref();
  return w;
}

/**
 * Writes operator part `op` of snapshot `path` (`writeOperatorPart`: the state files, then
 * `_parts/<uid>.json`) in the worker thread. `op.columns` must be a copy (nothing in it may change
 * after the call); `op.entries` is not read.
 * @returns the thread that wrote it (its Node threadId, never 0, and its Linux task id)
 * @throws the worker's error, re-created with its message, hint and exit code
 */
export function writePartInWorker(
  path: string,
  op: Omit<OperatorSnapshotInput, 'entries'> & { windowRows?: WindowRowsCopy },
  maxKeyGroups: number,
): Promise<PartWriter> {
  worker ??= start();
  const w = worker;
  const id = nextId++;
  const job: PartJob = { id, path, op, maxKeyGroups, s3Endpoint: s3Config.endpoint };
  return new Promise<PartWriter>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    // A job that cannot be sent (e.g. a value structured clone refuses) must not stay pending: the
    // ref'd worker would keep the process alive waiting for an answer that never comes.
    const fail = (e: unknown) => {
      pending.delete(id);
      if (pending.size === 0) w.unref();
      reject(new RuntimeError(`checkpoint part writer: cannot send the part (${(e as Error).message})`));
    };
    // The copy's typed arrays were made for this part: move them rather than copy them.
    const r = op.windowRows;
    const transfer = r
      ? [r.kinds, r.keyGroup, r.kid, r.windowStart, r.windowEnd, r.timer, r.maxTs, r.acc0, r.acc1, r.has].map(
          (a) => a.buffer as ArrayBuffer,
        )
      : [];
    try {
      w.postMessage(job, transfer);
    } catch (e) {
      fail(e);
    }
  });
}
