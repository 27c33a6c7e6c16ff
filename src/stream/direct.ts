/**
 * Operator chaining for `kappa run 'A | B | C'`: the stages of a pipeline in one process, connected
 * by `DirectChannel`s instead of pipes. The upstream stage's stream writer calls the downstream
 * stage's stream consumer directly — the same events in the same order as the pipe protocol
 * (man kappa-stream.5), with no encoding, no decoding and no copy: records and record batches are
 * handed over as objects.
 *
 * Each stage runs in its own async context (`runInStage`, Node's AsyncLocalStorage) that says which
 * channel is its stdin and its stdout; `stageInput()` and `openStreamWriter()` (writer.ts) consult
 * it, so the commands run unchanged. Back-pressure: the writer queues events until the consumer is
 * attached and while it processes earlier ones; `flushIfFull` waits once more than `HIGH_WATER`
 * events are queued, `flush` and `close` wait for the queue to drain. A consumer that throws fails
 * its stage (the attach promise rejects) and closes the channel for the writer (as EPIPE does for a
 * pipe: the upstream stops quietly); an upstream stage that fails makes `fail()` reject the
 * downstream's attach promise, as a stream cut off without its end line does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { RuntimeError } from '../errors.js';
import { stdinStream } from '../storage/stdin.js';
import { type RecordBatch, recordsOf } from './batch.js';
import type { StreamConsumer } from './input.js';
import type { Barrier, Header, Rec, StopInfo } from './protocol.js';
import type { StreamWriter } from './writer.js';

/** Queued events above which `flushIfFull` waits for the consumer. */
const HIGH_WATER = 8192;

type Event = (c: StreamConsumer) => void | Promise<void>;

/** An in-process stream between two fused stages (see the module doc). */
export class DirectChannel {
  private consumer: StreamConsumer | undefined;
  /** Queued events; `head` is the next one to deliver (no `shift()`: it would copy the queue). */
  private q: (Event | undefined)[] = [];
  private head = 0;
  private draining: Promise<void> | undefined;
  private failure: unknown;
  private cancelled = false;
  private done = false;
  private settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private waiters: (() => void)[] = [];

  /** @param name how messages name this channel's upstream stage, e.g. `stage 1 (ingest)` */
  constructor(readonly name: string) {}

  /**
   * The downstream side: delivers every event to `consumer`; resolves once the end (or stop) event
   * was processed, rejects when the consumer throws or the upstream stage failed.
   */
  attach(consumer: StreamConsumer): Promise<void> {
    if (this.consumer) throw new Error('internal: a direct channel has one consumer');
    this.consumer = consumer;
    return new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.failure !== undefined) reject(this.failure);
      else if (this.done && this.queued === 0) resolve();
      else this.kick();
    });
  }

  /** The upstream side's writer. */
  writer(): StreamWriter {
    return new DirectWriter(this);
  }

  /** The upstream stage failed: the downstream sees a stream cut off. */
  fail(e: unknown): void {
    if (this.done || this.failure !== undefined) return;
    this.failure = new RuntimeError(
      `input cut off: ${this.name} failed (${e instanceof Error ? e.message : String(e)}); nothing was committed`,
      'see that stage’s error above',
    );
    this.clear();
    this.settle?.reject(this.failure);
    this.wake();
  }

  /** The downstream stage is gone: the writer stops quietly. */
  cancel(): void {
    this.cancelled = true;
    this.clear();
    this.wake();
  }

  /** True once the consumer is gone (it failed, stopped reading, or was cancelled). */
  get closed(): boolean {
    return this.cancelled || this.failure !== undefined || this.consumer?.stopped?.() === true;
  }

  /** Queues an event (dropped once the channel is closed). */
  push(e: Event, last = false): void {
    if (this.closed) return;
    if (last) this.done = true;
    this.q.push(e);
    this.kick();
  }

  /** Events waiting for the consumer. */
  get queued(): number {
    return this.q.length - this.head;
  }

  private clear(): void {
    this.q = [];
    this.head = 0;
  }

  /** Resolves when the queue is empty (or the channel closed). */
  idle(): Promise<void> {
    if ((this.queued === 0 && !this.draining) || this.closed) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private kick(): void {
    if (!this.consumer || this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Events pushed after the loop saw an empty queue but before this callback ran found
      // `draining` still set and did not kick: deliver them now, or they would wait forever.
      if (this.queued > 0 && !this.closed) this.kick();
      else this.wake();
    });
  }

  private async drain(): Promise<void> {
    const c = this.consumer as StreamConsumer;
    try {
      while (this.queued > 0 && !this.closed) {
        const e = this.q[this.head] as Event;
        this.q[this.head++] = undefined;
        if (this.head === this.q.length) this.clear();
        const p = e(c);
        if (p) await p;
      }
      if (this.done && this.queued === 0 && this.failure === undefined) this.settle?.resolve();
    } catch (err) {
      this.failure = err;
      this.clear();
      this.settle?.reject(err);
    }
  }
}

/** The stream writer of a stage whose stdout is a direct channel. */
class DirectWriter implements StreamWriter {
  readonly format = 'direct';
  private line = 0;
  constructor(private readonly ch: DirectChannel) {}
  get isClosed(): boolean {
    return this.ch.closed;
  }
  header(h: Header): void {
    this.line++;
    this.ch.push((c) => c.header(h));
  }
  record(r: Rec, rawLine?: string): void {
    const n = ++this.line;
    this.ch.push((c) => c.record(r, n, rawLine));
  }
  batch(b: RecordBatch): void {
    const first = this.line + 1;
    this.line += b.length;
    this.ch.push(async (c) => {
      if (c.batch) {
        await c.batch(b, first);
        return;
      }
      const recs = recordsOf(b);
      for (let i = 0; i < recs.length; i++) {
        const p = c.record(recs[i], first + i);
        if (p) await p;
      }
    });
  }
  watermark(wm: number): void {
    this.line++;
    this.ch.push((c) => c.watermark(wm));
  }
  barrier(b: Barrier): void {
    this.line++;
    this.ch.push((c) => c.barrier(b));
  }
  endEvent(final?: Barrier): void {
    this.ch.push((c) => c.end(final), true);
  }
  stopEvent(s: StopInfo): void {
    this.ch.push((c) => c.stop(s), true);
  }
  async flushIfFull(): Promise<void> {
    if (this.ch.queued > HIGH_WATER) await this.flush();
  }
  async flush(): Promise<void> {
    this.ch.push((c) => c.afterBatch?.());
    await this.ch.idle();
  }
  close(): Promise<void> {
    return this.ch.idle();
  }
}

/** The channels of one fused stage. */
export interface StageIO {
  /** Its stdin, or undefined for the process's stdin. */
  input?: DirectChannel;
  /** Its stdout, or undefined for the process's stdout. */
  output?: DirectChannel;
  /**
   * The only top-level fields the rest of the pipeline reads from this (source) stage's records,
   * when `kappa run` proved that (commands/run.ts `sourceProjection`); a columnar reader may then
   * decode only these. Undefined: every field is needed.
   */
  readColumns?: readonly string[];
}

const stage = new AsyncLocalStorage<StageIO>();

/** Runs `fn` as a fused stage with the given channels (see the module doc). */
export function runInStage<T>(io: StageIO, fn: () => Promise<T>): Promise<T> {
  return stage.run(io, fn);
}

/**
 * The current stage's stdin: a direct channel inside `kappa run`, else the process's stdin
 * (storage/stdin.ts `stdinStream`: each chunk valid until the next read).
 */
export function stageInput(): AsyncIterable<Buffer> | DirectChannel {
  return stage.getStore()?.input ?? stdinStream();
}

/**
 * The top-level fields a fused source stage needs to read (`StageIO.readColumns`), or undefined
 * outside `kappa run` or when every field is needed.
 */
export function stageReadColumns(): readonly string[] | undefined {
  return stage.getStore()?.readColumns;
}

/** The current stage's direct stdout channel, or undefined when stdout is the process's. */
export function stageOutput(): DirectChannel | undefined {
  return stage.getStore()?.output;
}
