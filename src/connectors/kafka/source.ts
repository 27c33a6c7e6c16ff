/**
 * The Kafka source kind: `kappa ingest kafka://host:port[,host:port]/topic`.
 *
 * Reading model (as Flink's KafkaSource): kappa picks the partitions (`--partitions`, default all)
 * and the start/stop offsets itself (positions.ts); the consumer group named by `--group` is used
 * only to read (`--from committed`) and commit offsets, never for membership. Fetching goes through
 * the PartitionReader of adapter.ts (the only module that knows the client library). Without
 * `--group`, no group state remains. With `--group`, the next offset of every partition is
 * committed (OffsetCommit for a member-less group, as standalone consumers do) only after a clean
 * end of a bounded read: every partition reached `--until`, the end-of-read check passed and the
 * end line was written. A failed run, a run stopped by a signal and an unbounded run commit
 * nothing (stop-with-savepoint is the checkpoints issue's).
 *
 * Records: value parsed as JSON (a non-JSON value is a bad record naming partition and offset),
 * native event time = the Kafka record timestamp, native key = the message key (UTF-8), headers
 * as strings, provenance {source, partition, offset}. Each delivered batch belongs to one
 * partition (`split` = partition number), so ingest keeps one watermark per partition.
 *
 * Fetch and delivery are decoupled, as in Flink's SourceReaderBase: the reader hands each fetched
 * batch to a per-partition queue; `batches()` delivers queued records in slices of at most SLICE
 * records, round-robin over the partitions it may deliver from. Back-pressure: while more than
 * QUEUED_PER_PARTITION fetches per partition are queued in partitions not paused and some of them
 * can be delivered, the
 * reader's batch callback waits (it never waits when nothing can be delivered, so a partition the
 * others wait for is always fetched). A partition paused by alignment stops being fetched once
 * QUEUED_PER_PARTITION fetches of it are queued. A record is thus fetched once, whatever pausing does (the reader used to
 * discard the rest of a fetch at every pause and fetch it again on resume: 5.1 million records
 * decoded for 200,000 delivered).
 *
 * Alignment (`--max-drift`, FLIP-182 watermark alignment): after each batch, ingest reports the
 * watermark of every partition; a partition whose watermark is ahead of the minimum by more than
 * the drift is paused: its buffer is kept but not delivered (and, being full, not refilled) until
 * the minimum catches up. The minimum is taken over the partitions that can still move it:
 * finished partitions (stop offset reached) and idle ones are left out, so they never hold the
 * others paused. The slowest partition taking part is never paused, so some partition always
 * progresses and none stays paused for ever; finishing a partition re-evaluates alignment at once.
 *
 * Idleness (`--idle-timeout`, FLIP-471 semantics): a partition that delivered nothing for that
 * long (wall clock), holds no fetched records and is not paused by alignment is idle and does not
 * hold the combined watermark back; a paused partition is never idle (its silence is kappa's
 * doing, not the log's), and a resumed one starts its idle clock afresh. A finished partition
 * never holds the watermark back.
 *
 * End-of-read consistency check: every slice handed to ingest is entered in a DeliveryLedger
 * (ledger.ts) with the offsets it covers. Before a bounded read returns as complete, the ledger
 * must show every offset in [start, stop) of every partition delivered (or known to hold no record:
 * compaction, transaction markers); otherwise the read fails (exit 1) naming partition and offsets.
 * A bounded read can thus never exit 0 having silently delivered less than it promised.
 *
 * Signals: the source installs no signal handler; the ingest runtime decides what a SIGINT or
 * SIGTERM means. close() is prompt (the reader's shutdown is bounded) and never commits.
 */
import { randomBytes } from 'node:crypto';
import { DataError, KappaError, type Location, RuntimeError, UsageError } from '../../errors.js';
import type { RowBatch } from '../../formats/format.js';
import { type BigIntegerCount, parseJsonExact } from '../../formats/json-exact.js';
import type { Provenance } from '../../stream/protocol.js';
import { parseDuration } from '../../time/duration.js';
import type { RecordSource, SourceOptions, SourcePosition } from '../source.js';
import {
  type FetchedBatch,
  type FetchedRecord,
  type KafkaAdminClient,
  kafkaAdmin,
  type PartitionReader,
  partitionReader,
  type RawHeaders,
} from './adapter.js';
import { type KafkaUri, kafkaErrorText, parseClientOptions, parseKafkaUri } from './client.js';
import { DeliveryLedger } from './ledger.js';
import {
  type PositionSpec,
  parsePartitionList,
  parsePosition,
  partitionBounds,
  resolveStart,
  resolveStop,
} from './positions.js';

/** Largest number of records handed to ingest at once (bounds the overshoot of a pause). */
export const SLICE = 256;

/** How often (ms) the source wakes ingest when no data arrives, so idleness and progress update. */
const TICK_MS = 200;

/** Flags of `kappa ingest` the Kafka source reads. */
export interface KafkaSourceOptions extends SourceOptions {
  group?: string;
  from?: string;
  until?: string;
  partitions?: string;
  idleTimeout?: string;
  maxDrift?: string;
  /** `--on-error`: with `skip`, a resume below the log start loses the deleted records with a warning. */
  onError?: string;
  /** `-X key=value` occurrences (commander names a short-only flag by its letter). */
  X?: string[];
}

/** Queued fetches per partition (on average) above which the reader's callback waits. */
const QUEUED_PER_PARTITION = 2;

/** Fetched records of one partition not yet delivered (one fetch). */
interface Buffered {
  records: FetchedRecord[];
  /** Next index of `records` to look at. */
  i: number;
  /** First offset the next delivered slice covers (the fetch position for the first slice). */
  from: bigint;
  /** One past the last offset the fetch covered. */
  end: bigint;
}

interface PartitionState {
  partition: number;
  /** Next offset to deliver. */
  next: bigint;
  /** Exclusive stop offset, or undefined for an unbounded read. */
  stop?: bigint;
  /** Log end offset last reported by a fetch (for lag). */
  high: bigint;
  finished: boolean;
  /** Paused by watermark alignment: its buffer is not delivered. */
  paused: boolean;
  /** Wall-clock ms of the last delivered record (or of the start, or of the last resume). */
  lastActivity: number;
  /** Fetched, undelivered records, oldest fetch first. */
  queue: Buffered[];
  /** Where the reader continues fetching: one past the last offset of the last queued fetch. */
  fetchPos: bigint;
  /** The reader is fetching this partition (not stopped by alignment or the end). */
  fetching: boolean;
}

function headerText(h: RawHeaders | undefined): Record<string, string> | undefined {
  if (!h) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    out[k] = typeof one === 'string' ? one : one.toString('utf8');
    any = true;
  }
  return any ? out : undefined;
}

/** Decodes fetched records into a RowBatch for partition `p` (JSON values; integers beyond 2^53 as decimal strings). */
function toBatch(uri: string, p: number, msgs: FetchedRecord[]): RowBatch {
  const rows: (Record<string, unknown> | undefined)[] = new Array(msgs.length);
  let errors: Map<number, string> | undefined;
  const count: BigIntegerCount = { n: 0 }; // integers beyond 2^53 kept as decimal strings
  for (let i = 0; i < msgs.length; i++) {
    const v = msgs[i].value;
    if (v === null) {
      rows[i] = null as unknown as Record<string, unknown>; // tombstone: value null
      continue;
    }
    try {
      rows[i] = parseJsonExact(v.toString('utf8'), count) as Record<string, unknown>;
    } catch (e) {
      rows[i] = undefined;
      errors ??= new Map();
      errors.set(i, `value is not JSON (${(e as Error).message})`);
    }
  }
  return {
    rows,
    errors,
    bigIntegers: count.n,
    split: String(p),
    where: (i): Location => ({ source: uri, partition: p, offset: msgs[i].offset }),
    raw: (i) => msgs[i].value?.toString('utf8') ?? '',
    nativeTs: (i) => {
      const t = Number(msgs[i].timestamp);
      return Number.isFinite(t) && t >= 0 ? t : undefined;
    },
    nativeKey: (i) => msgs[i].key?.toString('utf8') ?? null,
    prov: (i): Provenance => ({ source: uri, partition: p, offset: msgs[i].offset }),
    headers: (i) => headerText(msgs[i].headers),
  };
}

/** Offsets [from, to) of a partition covered by a delivered slice holding `records` records. */
interface Cover {
  partition: number;
  from: bigint;
  to: bigint;
  records: number;
}

const emptyBatch: RowBatch = { rows: [], where: () => ({ source: '' }), raw: () => '' };

/**
 * The Kafka source (see the module header). Exported for tests, which drive it with a scripted
 * admin client and reader; `openKafka` builds it on the real client.
 */
export class KafkaSource implements RecordSource {
  readonly progressUnit = 'rows' as const;
  /** Per-partition log order is taken as event-time order (Flink's forMonotonousTimestamps). */
  readonly defaultMaxOutOfOrdernessMs = 0;
  total?: number;
  private readonly parts = new Map<number, PartitionState>();
  private reader: PartitionReader | undefined;
  private ledger = new DeliveryLedger([]);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private closed = false;
  /** Set once a bounded read delivered everything and passed the end-of-read check. */
  private complete = false;
  /** Round-robin cursor over the partitions (index into `order`). */
  private cursor = 0;
  private order: PartitionState[] = [];
  /** The per-partition watermarks last reported by ingest (for alignment). */
  private watermarks: ReadonlyMap<string, number> = new Map();
  /** Reader callbacks waiting for back-pressure to ease (see onBatch). */
  private waiters: (() => void)[] = [];
  private readonly fetchGroup = `kappa-ingest-${randomBytes(6).toString('hex')}`;

  /**
   * @param openReader creates the partition reader (called once, on the first `batches()` call)
   *   with the name of the throwaway fetch group
   * @param idleMs `--idle-timeout` in ms, or undefined (no idleness)
   * @param driftMs `--max-drift` in ms, or undefined (no alignment)
   */
  constructor(
    private readonly u: KafkaUri,
    private readonly admin: KafkaAdminClient,
    private readonly openReader: (fetchGroup: string) => PartitionReader,
    private readonly group: string | undefined,
    private readonly idleMs: number | undefined,
    private readonly driftMs: number | undefined,
  ) {}

  /**
   * Resolves partitions and positions; marks empty ranges finished. With `resume` (a saved 'kafka'
   * position, `SourceOptions.startAt`), the start offsets come from it instead of `from` (see
   * `resumeOffsets`). Throws UsageError/RuntimeError, DataError for a position that does not fit.
   */
  async init(
    partitions: number[] | undefined,
    from: PositionSpec,
    until: PositionSpec | undefined,
    resume?: { pos: SourcePosition; skipLost: boolean; warn: (m: string) => void },
  ) {
    const { topic } = this.u;
    let all: number[];
    try {
      all = await this.admin.partitionIds(topic);
    } catch (e) {
      throw new RuntimeError(
        `${this.u.uri}: cannot read topic metadata: ${kafkaErrorText(e)}`,
        'check the broker address and that the topic exists',
      );
    }
    const chosen = partitions ?? all;
    for (const p of chosen)
      if (!all.includes(p))
        throw new UsageError(`--partitions: topic '${topic}' has no partition ${p} (it has ${all.length})`);
    let bounds: Awaited<ReturnType<typeof partitionBounds>>;
    let start: Map<number, bigint>;
    let stop: Map<number, bigint> | undefined;
    try {
      bounds = await partitionBounds(this.admin, topic);
      // A position set to a time (`kappa state-edit set-positions SP --source UID 2026-06-01T00:00Z`)
      // starts at the first record at or after it, as --from TIME does.
      const atTime =
        resume &&
        resume.pos.kind === 'kafka' &&
        typeof resume.pos.timestamp === 'number' &&
        resume.pos.next == null
          ? resume.pos.timestamp
          : undefined;
      start =
        resume && atTime === undefined
          ? resumeOffsets(resume.pos, this.u.uri, topic, all, chosen, bounds, resume.skipLost, resume.warn)
          : await resolveStart(
              this.admin,
              topic,
              chosen,
              atTime === undefined ? from : { kind: 'time', ms: atTime },
              bounds,
              this.group,
            );
      stop = until ? await resolveStop(this.admin, topic, chosen, until, bounds) : undefined;
    } catch (e) {
      if (e instanceof KappaError) throw e;
      throw new RuntimeError(
        `${this.u.uri}: cannot resolve the start and stop offsets${this.group ? ` (group '${this.group}')` : ''}: ${kafkaErrorText(e)}`,
        'check that the broker is up; nothing was read',
      );
    }
    const now = Date.now();
    let total = 0n;
    for (const p of chosen) {
      // Never default a missing partition to offset 0: stop 0 would end the read at once, "complete".
      if (!bounds.has(p))
        throw new RuntimeError(
          `${this.u.uri}: the broker reported no offsets for partition ${p}`,
          'rerun the read',
        );
      const next = start.get(p) ?? 0n;
      const s = stop?.get(p);
      this.parts.set(p, {
        partition: p,
        next,
        stop: s,
        high: bounds.get(p)?.high ?? 0n,
        finished: s !== undefined && next >= s,
        paused: false,
        lastActivity: now,
        queue: [],
        fetchPos: next,
        fetching: true,
      });
      if (s !== undefined && s > next) total += s - next;
    }
    this.order = [...this.parts.values()];
    if (stop) this.total = Number(total);
    this.ledger = new DeliveryLedger(
      this.order.map((s) => ({ partition: s.partition, start: s.next, stop: s.stop })),
    );
  }

  splits(): string[] {
    return [...this.parts.keys()].map(String);
  }

  idleSplits(): ReadonlySet<string> {
    const now = Date.now();
    const idle = new Set<string>();
    for (const s of this.parts.values()) {
      if (s.finished) idle.add(String(s.partition));
      else if (
        this.idleMs !== undefined &&
        !s.paused &&
        s.queue.length === 0 &&
        now - s.lastActivity >= this.idleMs
      )
        idle.add(String(s.partition));
    }
    return idle;
  }

  detail(): string {
    const parts: string[] = [];
    for (const s of this.parts.values()) {
      const lag = s.high > s.next ? s.high - s.next : 0n;
      const state = s.finished ? ' done' : s.paused ? ' paused' : '';
      parts.push(`p${s.partition}:${lag}${state}`);
    }
    return `lag ${parts.join(' ')}`;
  }

  /** Watermark alignment feedback from ingest (after each batch): re-evaluates which partitions pause. */
  onWatermarks(perSplit: ReadonlyMap<string, number>, _emitted: number): void {
    this.watermarks = perSplit;
    this.align();
  }

  /**
   * FLIP-182 alignment: pauses the partitions whose watermark is more than the drift ahead of the
   * minimum over the partitions taking part (neither finished nor idle), resumes the others. A
   * partition without a watermark yet counts as -Infinity (it holds the others back until it
   * delivers a record, goes idle or finishes). With no partition taking part, nothing is paused.
   */
  private align(): void {
    const drift = this.driftMs;
    if (drift === undefined) return;
    const idle = this.idleSplits();
    const wm = (s: PartitionState) => this.watermarks.get(String(s.partition)) ?? Number.NEGATIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    for (const s of this.parts.values()) if (!idle.has(String(s.partition))) min = Math.min(min, wm(s));
    const now = Date.now();
    for (const s of this.parts.values()) {
      const pause = !s.finished && min !== Number.POSITIVE_INFINITY && wm(s) > min + drift;
      if (pause === s.paused) continue;
      s.paused = pause;
      if (pause) {
        if (s.queue.length >= QUEUED_PER_PARTITION) this.stopFetching(s);
      } else {
        s.lastActivity = now; // its silence while paused was not the log's: the idle clock restarts
        this.startFetching(s);
        this.notify();
      }
    }
    this.release();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private fail(e: unknown): void {
    this.failure ??= new RuntimeError(
      `${this.u.uri}: ${kafkaErrorText(e)}`,
      'the broker went away or refused the request; nothing was committed (rerun to read again)',
    );
    this.notify();
    this.release();
  }

  private allFinished(): boolean {
    for (const s of this.parts.values()) if (!s.finished) return false;
    return true;
  }

  /**
   * Reader callback: queues a fetched batch. Resolves at once, or (back-pressure) once fewer
   * fetches are queued or nothing queued can be delivered.
   */
  private onBatch(b: FetchedBatch): Promise<void> | undefined {
    const s = this.parts.get(b.partition);
    if (!s || this.closed) return;
    s.high = b.highWatermark;
    if (s.finished) {
      this.stopFetching(s);
      return;
    }
    let i = 0;
    while (i < b.records.length && BigInt(b.records[i].offset) < s.fetchPos) i++; // queued already
    s.queue.push({ records: b.records, i, from: b.fetchedOffset, end: b.endOffset });
    if (b.endOffset > s.fetchPos) s.fetchPos = b.endOffset;
    // Paused by alignment, or everything up to the stop offset fetched: fetching more would only
    // hold the reader in a long poll at the log end (up to fetch.max.wait.ms) while others wait.
    if ((s.paused && s.queue.length >= QUEUED_PER_PARTITION) || this.fetchedAll(s)) this.stopFetching(s);
    this.notify();
    if (!this.mustWait()) return;
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.mustWait()) this.waiters.push(check);
        else resolve();
      };
      this.waiters.push(check);
    });
  }

  /**
   * Back-pressure condition of onBatch: more than QUEUED_PER_PARTITION fetches per partition
   * queued in partitions that can deliver (paused ones stop being fetched on their own), and at
   * least one of them has something to deliver.
   */
  private mustWait(): boolean {
    if (this.closed || this.failure) return false;
    let queued = 0;
    for (const s of this.order) if (!s.paused && !s.finished) queued += s.queue.length;
    return queued > QUEUED_PER_PARTITION * this.order.length && this.deliverable();
  }

  /** Re-checks waiting reader callbacks (after a delivery, an alignment change, a failure). */
  private release(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const check of w) check();
  }

  /** The reader stops fetching `s` (finished, fetched up to its stop, or paused by alignment with its queue full). */
  private stopFetching(s: PartitionState): void {
    if (!s.fetching) return;
    s.fetching = false;
    this.reader?.pause(s.partition);
  }

  /** True when every offset below the stop offset of `s` has been fetched. */
  private fetchedAll(s: PartitionState): boolean {
    return s.stop !== undefined && s.fetchPos >= s.stop;
  }

  /** The reader fetches `s` again from where its queue ends. */
  private startFetching(s: PartitionState): void {
    if (s.fetching || s.finished || this.fetchedAll(s)) return;
    s.fetching = true;
    this.reader?.resume(s.partition, s.fetchPos);
  }

  /**
   * Reader callback: offsets [from, to) hold no data record (a fetch of transaction markers or
   * aborted records only). Queued like a fetch without records, so that delivering it moves the
   * partition past them in order: a bounded read whose stop offset lies just after a marker
   * finishes instead of waiting for a record that will never come.
   */
  private onEmpty(partition: number, from: bigint, to: bigint): void {
    const s = this.parts.get(partition);
    if (!s || s.finished || this.closed || to <= s.fetchPos) return;
    s.queue.push({ records: [], i: 0, from, end: to });
    s.fetchPos = to;
    if (this.fetchedAll(s)) this.stopFetching(s);
    this.notify();
  }

  /** A partition reached its stop offset: stop fetching it and let the others re-align without it. */
  private onFinished(s: PartitionState): void {
    s.paused = false;
    s.queue = [];
    this.stopFetching(s);
    this.align();
    this.release();
    this.notify();
  }

  /** The next partition to deliver from (round-robin over buffered, unpaused partitions), if any. */
  private pick(): PartitionState | undefined {
    const n = this.order.length;
    for (let k = 0; k < n; k++) {
      const s = this.order[(this.cursor + k) % n];
      if (s.queue.length > 0 && !s.paused && !s.finished) {
        this.cursor = (this.cursor + k + 1) % n;
        return s;
      }
    }
    return undefined;
  }

  private deliverable(): boolean {
    for (const s of this.order) if (s.queue.length > 0 && !s.paused && !s.finished) return true;
    return false;
  }

  /**
   * Takes the next slice (at most SLICE records below the stop offset) of a partition's oldest
   * queued fetch. When that fetch is used up, the partition is finished or fetched again.
   */
  private slice(s: PartitionState): { records: FetchedRecord[]; cover: Cover } {
    const b = s.queue[0];
    const records: FetchedRecord[] = [];
    while (b.i < b.records.length && records.length < SLICE) {
      const r = b.records[b.i];
      const off = BigInt(r.offset);
      if (off < s.next) {
        b.i++; // delivered before (a fetch from before the position)
        continue;
      }
      if (s.stop !== undefined && off >= s.stop) {
        b.i = b.records.length; // at or past the stop offset: nothing more to deliver
        break;
      }
      records.push(r);
      b.i++;
    }
    if (records.length > 0) {
      s.next = BigInt(records[records.length - 1].offset) + 1n;
      s.lastActivity = Date.now();
    }
    const from = b.from;
    let to = s.next;
    if (b.i >= b.records.length) {
      // The fetch covered offsets up to `end`: what follows the last record holds no data record.
      const end = s.stop !== undefined && b.end > s.stop ? s.stop : b.end;
      if (end > to) to = end;
      s.next = to;
      s.queue.shift();
      this.release();
    } else b.from = to;
    if (s.stop !== undefined && s.next >= s.stop) s.finished = true;
    if (s.finished) this.onFinished(s);
    return { records, cover: { partition: s.partition, from, to, records: records.length } };
  }

  /** Starts the reader on every unfinished partition at its start offset. */
  private async start(): Promise<void> {
    if (this.allFinished()) return;
    const positions = new Map<number, bigint>();
    for (const s of this.parts.values()) if (!s.finished) positions.set(s.partition, s.next);
    this.reader = this.openReader(this.fetchGroup);
    try {
      await this.reader.start(positions, {
        batch: (b) => this.onBatch(b),
        empty: (p, from, to) => this.onEmpty(p, from, to),
        error: (e) => this.fail(e),
      });
    } catch (e) {
      throw new RuntimeError(`${this.u.uri}: cannot start consuming: ${kafkaErrorText(e)}`);
    }
  }

  async *batches(): AsyncGenerator<RowBatch> {
    await this.start();
    for (;;) {
      if (this.failure) throw this.failure;
      // Closed while ingest still reads (a stop by signal): never end as if the input were complete.
      if (this.closed)
        throw new RuntimeError(`${this.u.uri}: the read was stopped before its end`, 'nothing was committed');
      const s = this.pick();
      if (s) {
        const { records, cover } = this.slice(s);
        if (records.length > 0) yield toBatch(this.u.uri, s.partition, records);
        // Entered after ingest took the slice: a run stopped at the yield never counts it.
        this.ledger.cover(cover.partition, cover.from, cover.to, cover.records);
        continue;
      }
      if (this.allFinished()) {
        this.verifyComplete();
        this.complete = true;
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, TICK_MS);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      // Nothing to deliver right now: an empty batch lets ingest update idleness, alignment and progress.
      if (!this.failure && !this.deliverable()) yield emptyBatch;
    }
  }

  /**
   * The end-of-read consistency check (see the header): a bounded read ends as complete only if
   * the delivery ledger shows every offset in [start, stop) of every partition delivered.
   */
  private verifyComplete(): void {
    const problems = this.ledger.verify();
    if (problems.length === 0) return;
    this.failure = new RuntimeError(
      `${this.u.uri}: the bounded read ended without delivering every record: ${problems.join('; ')}`,
      'this is a bug in the Kafka source, not in the data; nothing was committed (rerun the read)',
    );
    throw this.failure;
  }

  /** The next offset of every partition (SourcePosition 'kafka'). */
  position(): SourcePosition {
    const next: Record<string, string> = {};
    for (const s of this.parts.values()) next[String(s.partition)] = String(s.next);
    return { kind: 'kafka', topic: this.u.topic, next };
  }

  /**
   * Commits the next offset of every partition to `--group`. Only after a complete bounded read
   * (never after a failure, a signal stop, or for an unbounded read); throws RuntimeError when the
   * broker refuses (e.g. the group has active members).
   */
  async commit(): Promise<void> {
    if (!this.group || !this.complete || this.failure || this.closed) return;
    const offsets = new Map([...this.parts.values()].map((s) => [s.partition, s.next]));
    try {
      await this.admin.commitOffsets(this.group, this.u.topic, offsets);
    } catch (e) {
      throw new RuntimeError(
        `${this.u.uri}: cannot commit offsets for group '${this.group}': ${kafkaErrorText(e)}`,
        'the group must have no active members (kappa commits as a standalone consumer)',
      );
    }
  }

  /** Stops fetching, deletes the throwaway fetch group and disconnects; prompt, never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notify();
    this.release();
    await this.reader?.close();
    await this.admin.disconnect();
  }
}

/**
 * The start offset of each partition in `chosen` when resuming at a saved position (SourcePosition
 * 'kafka'): a listed partition starts at its saved next offset, a partition not listed (added
 * since the checkpoint) at its earliest offset (log start).
 * @param all the topic's partitions now; `bounds` their log start and end offsets
 * @param skipLost `--on-error skip`: an offset below the log start (records deleted by retention)
 *   starts at the log start with a warning saying how many records were lost, instead of failing
 * @param warn prints one warning line
 * @throws DataError when the position is not a 'kafka' position of this topic, has an invalid
 *   offset, lists a partition that no longer exists, or an offset outside the partition's log
 *   (below its start without `skipLost`, or beyond its end: the topic was recreated)
 */
export function resumeOffsets(
  pos: SourcePosition,
  uri: string,
  topic: string,
  all: readonly number[],
  chosen: readonly number[],
  bounds: ReadonlyMap<number, { low: bigint; high: bigint }>,
  skipLost: boolean,
  warn: (m: string) => void,
): Map<number, bigint> {
  const again = 'resume from a checkpoint of this topic, or start without --resume';
  if (pos.kind !== 'kafka')
    throw new DataError(
      `${uri}: the saved source position is a '${pos.kind}' position, not a Kafka one`,
      again,
    );
  if (pos.topic !== topic)
    throw new DataError(
      `${uri}: the saved position is of topic '${String(pos.topic)}', not '${topic}'`,
      again,
    );
  const next = pos.next;
  if (next === null || typeof next !== 'object' || Array.isArray(next))
    throw new DataError(`${uri}: the saved Kafka position has no 'next' offsets`, again);
  const saved = new Map<number, bigint>();
  for (const [k, v] of Object.entries(next)) {
    const ok =
      /^\d+$/.test(k) &&
      (typeof v === 'string' ? /^\d+$/.test(v) : Number.isSafeInteger(v) && (v as number) >= 0);
    if (!ok)
      throw new DataError(
        `${uri}: the saved Kafka position has an invalid offset ${JSON.stringify(k)}: ${JSON.stringify(v)}`,
        again,
      );
    const p = Number(k);
    if (!all.includes(p))
      throw new DataError(
        `${uri}: partition ${p} of the saved position no longer exists (topic '${topic}' has ${all.length} partitions)`,
        again,
      );
    saved.set(p, BigInt(v as string | number));
  }
  const out = new Map<number, bigint>();
  for (const p of chosen) {
    const low = bounds.get(p)?.low ?? 0n;
    const high = bounds.get(p)?.high ?? 0n;
    const o = saved.get(p);
    if (o === undefined) {
      out.set(p, low);
      continue;
    }
    if (o > high)
      throw new DataError(
        `${uri}: partition ${p}: the saved next offset ${o} is beyond the log end ${high} (was the topic recreated?)`,
        again,
      );
    if (o < low) {
      const lost = `partition ${p}: the saved next offset ${o} is below the log start ${low}: ${low - o} records were deleted by retention before they were read`;
      if (!skipLost)
        throw new DataError(
          `${uri}: ${lost}`,
          'rerun with --on-error skip to resume at the log start and lose them',
        );
      warn(`${uri}: ${lost}; resuming at ${low} (--on-error skip)`);
      out.set(p, low);
      continue;
    }
    out.set(p, o);
  }
  return out;
}

/** Opens one `kafka://` SOURCE for ingest (registered lazily by options.ts). */
export async function openKafka(sources: string[], o: KafkaSourceOptions): Promise<RecordSource> {
  if (sources.length !== 1)
    throw new UsageError(`ingest reads one kafka:// topic per run, got ${sources.length}`);
  const u = parseKafkaUri(sources[0]);
  const client = parseClientOptions(o.X);
  const from = parsePosition(o.from ?? (o.group ? 'committed' : 'earliest'), '--from', [
    'earliest',
    'latest',
    'committed',
  ]);
  const until = o.until !== undefined ? parsePosition(o.until, '--until', ['latest']) : undefined;
  const partitions = o.partitions !== undefined ? parsePartitionList(o.partitions) : undefined;
  const idleMs = o.idleTimeout !== undefined ? parseDuration(o.idleTimeout, '--idle-timeout') : undefined;
  const driftMs = o.maxDrift !== undefined ? parseDuration(o.maxDrift, '--max-drift') : undefined;
  const admin = kafkaAdmin(u, client, 'kappa-ingest');
  try {
    await admin.connect();
  } catch (e) {
    throw new RuntimeError(`${u.uri}: cannot connect to ${u.brokers.join(',')}: ${kafkaErrorText(e)}`);
  }
  const src = new KafkaSource(
    u,
    admin,
    (group) => partitionReader(u, client, 'kappa-ingest', group),
    o.group,
    idleMs,
    driftMs,
  );
  try {
    const resume = o.startAt
      ? {
          pos: o.startAt,
          skipLost: o.onError === 'skip',
          warn: (m: string) => process.stderr.write(`kappa ingest: warning: ${m}\n`),
        }
      : undefined;
    await src.init(partitions, from, until, resume);
  } catch (e) {
    await admin.disconnect();
    throw e;
  }
  return src;
}
