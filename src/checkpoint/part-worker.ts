/**
 * The worker thread that writes a stateful stage's checkpoint part from a copy of its state
 * (`StageCheckpointer.barrierAsync` with `columns`, Flink's asynchronous snapshot phase): the
 * Parquet encoding, zstd, sha256 and the writes run here, so the stage's main thread goes on
 * reading its input while the part is written. Without this, the encoding shared the main thread
 * and the stage stopped draining its stdin for most of each checkpoint, which stalled the stage
 * before it through the 64 KiB pipe (bench scenario 9).
 *
 * Protocol (`PartJob` in, `PartResult` out, one at a time per job id): the job carries the
 * snapshot path, the operator's snapshot without `entries` (structured clone: typed arrays and
 * strings) and its key-group count; the worker calls `writeOperatorPart` and answers with ok, or
 * with the error's name, message, hint and exit code, which the main thread re-throws as a
 * KappaError with the same exit code.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, threadId } from 'node:worker_threads';
import { type WindowRowsCopy, windowSnapshotColumns } from '../ops/window/snapshot-rows.js';
import type { OperatorSnapshotInput } from '../state/savepoint/write.js';
import { s3Config } from '../storage/s3-options.js';
import { writeOperatorPart } from './snapshot.js';

/** A part to write (main thread -> worker). */
export interface PartJob {
  id: number;
  path: string;
  op: Omit<OperatorSnapshotInput, 'entries'> & { windowRows?: WindowRowsCopy };
  maxKeyGroups: number;
  /** `--s3-endpoint` of the main thread (the environment is inherited, flags are not). */
  s3Endpoint?: string;
}

/**
 * The answer (worker -> main thread). A written part names the thread that wrote it: its Node
 * `threadId` (never 0, the main thread's) and its Linux task id (`/proc/thread-self`, undefined
 * elsewhere), so the stage can report where its parts were written (kappa-checkpoints(7)).
 */
export type PartResult =
  | { id: number; ok: true; threadId: number; tid?: number }
  | { id: number; ok: false; name: string; message: string; hint?: string; exitCode?: number };

/**
 * Lowers this thread's scheduling priority to nice 19 (Linux: setpriority on the thread's own task
 * id, read from /proc/thread-self), so that on a busy machine the pipeline's stages get the CPU
 * first and the part is written with what is left over. Elsewhere, or when refused, it stays as is.
 */
function lowerPriority(tid: number | undefined): void {
  try {
    if (tid !== undefined) setPriority(tid, 19);
  } catch {
    // not permitted: the thread keeps the process's priority
  }
}

/** This thread's Linux task id (from /proc/thread-self), or undefined (not Linux). */
function ownTid(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

const port = parentPort;
const tid = port ? ownTid() : undefined;
if (port) lowerPriority(tid);
if (port)
  port.on('message', (job: PartJob) => {
    if (job.s3Endpoint !== undefined) s3Config.endpoint = job.s3Endpoint;
    const { windowRows, ...op } = job.op;
    Promise.resolve()
      .then(() => {
        const columns = windowRows ? windowSnapshotColumns(windowRows, { valueBytes: true }) : op.columns;
        return writeOperatorPart(job.path, { ...op, columns, entries: [] }, job.maxKeyGroups);
      })
      .then(
        () => port.postMessage({ id: job.id, ok: true, threadId, tid } satisfies PartResult),
        (e: unknown) => {
          const err = e as Error & { hint?: string; exitCode?: number };
          port.postMessage({
            id: job.id,
            ok: false,
            name: err.name ?? 'Error',
            message: err.message ?? String(e),
            hint: err.hint,
            exitCode: err.exitCode,
          } satisfies PartResult);
        },
      );
  });
