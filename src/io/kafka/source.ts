/**
 * The Kafka source kind: `kappa ingest kafka://host:port[,host:port]/topic` (kafkajs).
 *
 * Reading model (as Flink's KafkaSource): kappa picks the partitions (`--partitions`, default all)
 * and the start/stop offsets itself (positions.ts); the consumer group named by `--group` is used
 * only to read (`--from committed`) and commit offsets, never for membership. kafkajs cannot fetch
 * without joining some group, so the fetching consumer joins a throwaway group
 * `kappa-ingest-<random>` that owns no offsets (auto-commit off) and is deleted when the run ends.
 * Without `--group`, no group state remains. With `--group`, the next offset of every partition is
 * committed (OffsetCommit for a member-less group, as standalone consumers do) only after a clean
 * end of the output (the bounded read reached `--until`). A failed run, or one stopped by
 * SIGINT/SIGTERM (src/stream/signals.ts: no end line), commits nothing.
 *
 * Records: value parsed as JSON (a non-JSON value is a bad record naming partition and offset),
 * native event time = the Kafka record timestamp, native key = the message key (UTF-8), headers
 * as strings, provenance {source, partition, offset}. Each delivered batch belongs to one
 * partition (`split` = partition number), so ingest keeps one watermark per partition.
 *
 * Idleness (`--idle-timeout`): a partition that delivered nothing for that long (wall clock) and
 * is not paused is idle and does not hold the combined watermark back; a partition that reached
 * its stop offset is finished and never does. Alignment (`--max-drift`, FLIP-182): after each
 * batch, partitions whose watermark is ahead of the combined (slowest) watermark by more than the
 * drift are paused and resumed (re-positioned at the next unread offset) once the slowest catches
 * up. Fetched batches are delivered in slices of at most SLICE records so a pause takes effect
 * within one slice.
 *
 * End-of-read consistency check: every slice handed to ingest is entered in a DeliveryLedger
 * (ledger.ts) with the offsets it covers. Before a bounded read returns as complete, the ledger
 * must show every offset in [start, stop) of every partition delivered (or known to hold no record:
 * compaction, transaction markers); otherwise the read fails (exit 1) naming partition and offsets.
 * A bounded read can thus never exit 0 having silently delivered less than it promised, whatever
 * kafkajs or the bookkeeping above did wrong.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, IHeaders, KafkaMessage } from 'kafkajs';
import { AssignerProtocol } from 'kafkajs';
import { type Location, RuntimeError, UsageError } from '../../errors.js';
import type { Provenance } from '../../stream/protocol.js';
import { parseDuration } from '../../time/duration.js';
import type { RowBatch } from '../format.js';
import type { RecordSource, SourceOptions, SourcePosition } from '../source.js';
import {
  type ClientOptions,
  type KafkaUri,
  kafkaClient,
  kafkaErrorText,
  parseClientOptions,
  parseKafkaUri,
} from './client.js';
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
  /** `-X key=value` occurrences (commander names a short-only flag by its letter). */
  X?: string[];
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
  paused: boolean;
  /** Wall-clock ms of the last delivered record (or of the start). */
  lastActivity: number;
}

function headerText(h: IHeaders | undefined): Record<string, string> | undefined {
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

/** Decodes fetched messages into a RowBatch for partition `p`. */
function toBatch(uri: string, p: number, msgs: KafkaMessage[]): RowBatch {
  const rows: (Record<string, unknown> | undefined)[] = new Array(msgs.length);
  let errors: Map<number, string> | undefined;
  for (let i = 0; i < msgs.length; i++) {
    const v = msgs[i].value;
    if (v === null) {
      rows[i] = null as unknown as Record<string, unknown>; // tombstone: value null
      continue;
    }
    try {
      rows[i] = JSON.parse(v.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      rows[i] = undefined;
      errors ??= new Map();
      errors.set(i, `value is not JSON (${(e as Error).message})`);
    }
  }
  return {
    rows,
    errors,
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

class KafkaSource implements RecordSource {
  readonly progressUnit = 'rows' as const;
  /** Per-partition log order is taken as event-time order (Flink's forMonotonousTimestamps). */
  readonly defaultMaxOutOfOrdernessMs = 0;
  total?: number;
  private readonly parts = new Map<number, PartitionState>();
  private consumer: Consumer | undefined;
  private pending: { batch: RowBatch; ack: () => void; cover: Cover } | undefined;
  private ledger = new DeliveryLedger([]);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private stopping = false;
  private readonly fetchGroup = `kappa-ingest-${randomBytes(6).toString('hex')}`;

  constructor(
    private readonly u: KafkaUri,
    private readonly client: ClientOptions,
    private readonly admin: Admin,
    private readonly group: string | undefined,
    private readonly idleMs: number | undefined,
    private readonly driftMs: number | undefined,
  ) {}

  /** Resolves partitions and positions; marks empty ranges finished. */
  async init(partitions: number[] | undefined, from: PositionSpec, until: PositionSpec | undefined) {
    const { topic } = this.u;
    let meta: Awaited<ReturnType<Admin['fetchTopicMetadata']>>;
    try {
      meta = await this.admin.fetchTopicMetadata({ topics: [topic] });
    } catch (e) {
      throw new RuntimeError(
        `${this.u.uri}: cannot read topic metadata: ${kafkaErrorText(e)}`,
        'check the broker address and that the topic exists',
      );
    }
    const all = meta.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    const chosen = partitions ?? all;
    for (const p of chosen)
      if (!all.includes(p))
        throw new UsageError(`--partitions: topic '${topic}' has no partition ${p} (it has ${all.length})`);
    const bounds = await partitionBounds(this.admin, topic);
    const start = await resolveStart(this.admin, topic, chosen, from, bounds, this.group);
    const stop = until ? await resolveStop(this.admin, topic, chosen, until, bounds) : undefined;
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
      });
      if (s !== undefined && s > next) total += s - next;
    }
    if (stop) this.total = Number(total);
    this.ledger = new DeliveryLedger(
      [...this.parts.values()].map((s) => ({ partition: s.partition, start: s.next, stop: s.stop })),
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
      else if (this.idleMs !== undefined && !s.paused && now - s.lastActivity >= this.idleMs)
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

  /** Watermark alignment: pause partitions ahead of the slowest by more than the drift. */
  onWatermarks(perSplit: ReadonlyMap<string, number>, emitted: number): void {
    if (this.driftMs === undefined || !this.consumer) return;
    const idle = this.idleSplits();
    let min = Number.POSITIVE_INFINITY;
    for (const [k, wm] of perSplit) if (!idle.has(k) && this.parts.has(Number(k))) min = Math.min(min, wm);
    if (min === Number.POSITIVE_INFINITY) min = emitted;
    const topic = this.u.topic;
    for (const s of this.parts.values()) {
      if (s.finished) continue;
      const wm = perSplit.get(String(s.partition)) ?? Number.NEGATIVE_INFINITY;
      const ahead = wm > min + this.driftMs; // true for any seen partition while another is unseen
      if (ahead && !s.paused) {
        s.paused = true;
        this.consumer.pause([{ topic, partitions: [s.partition] }]);
      } else if (!ahead && s.paused) {
        s.paused = false;
        s.lastActivity = Date.now();
        this.consumer.resume([{ topic, partitions: [s.partition] }]);
        this.consumer.seek({ topic, partition: s.partition, offset: String(s.next) });
      }
    }
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
  }

  private allFinished(): boolean {
    for (const s of this.parts.values()) if (!s.finished) return false;
    return true;
  }

  /** Hands one slice to the reader and waits until it was processed, heartbeating meanwhile. */
  private async deliver(batch: RowBatch, cover: Cover, heartbeat: () => Promise<void>): Promise<void> {
    let acked = false;
    const done = new Promise<void>((resolve) => {
      this.pending = {
        batch,
        cover,
        ack: () => {
          acked = true;
          resolve();
        },
      };
    });
    this.notify();
    while (!acked && !this.failure && !this.stopping) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 3000)))]);
      clearTimeout(timer);
      if (!acked) await heartbeat().catch(() => {});
    }
  }

  private async eachBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const s = this.parts.get(batch.partition);
    if (!s) return;
    s.high = BigInt(batch.highWatermark);
    let i = 0;
    const msgs = batch.messages;
    // Where this fetch's view of the log begins (kafkajs drops records before it): offsets from
    // here to a slice's last record are covered by that slice (gaps are compaction/markers).
    const fetched = (batch as { fetchedOffset?: string }).fetchedOffset;
    let from = fetched !== undefined ? BigInt(fetched) : msgs.length > 0 ? BigInt(msgs[0].offset) : s.next;
    // Skip what was already delivered (a fetch issued before a seek took effect).
    while (i < msgs.length && BigInt(msgs[i].offset) < s.next) i++;
    while (i < msgs.length && !s.finished && !s.paused && isRunning() && !isStale() && !this.stopping) {
      const slice: KafkaMessage[] = [];
      while (i < msgs.length && slice.length < SLICE) {
        const m = msgs[i];
        if (s.stop !== undefined && BigInt(m.offset) >= s.stop) break;
        slice.push(m);
        i++;
      }
      if (slice.length > 0) {
        s.next = BigInt(slice[slice.length - 1].offset) + 1n;
        s.lastActivity = Date.now();
      }
      let to = s.next;
      if (
        s.stop !== undefined &&
        (s.next >= s.stop || (i < msgs.length && BigInt(msgs[i].offset) >= s.stop))
      ) {
        s.finished = true;
        // The fetch returned a record at or past stop: offsets up to stop hold nothing to deliver.
        if (to < s.stop) to = s.stop;
      }
      const cover = { partition: s.partition, from, to, records: slice.length };
      from = to;
      if (slice.length > 0) await this.deliver(toBatch(this.u.uri, s.partition, slice), cover, heartbeat);
      else this.ledger.cover(cover.partition, cover.from, cover.to, 0);
      if (this.failure) return;
    }
    if (i >= msgs.length && !s.finished && !this.stopping) {
      // Every data record of the fetch was delivered; offsets after the last one up to the fetch's
      // last raw offset hold only transaction markers or aborted records (kafkajs filtered them).
      this.skipEmpty(s, s.next, BigInt(batch.lastOffset()) + 1n);
    }
    if (s.finished) {
      this.consumer?.pause([{ topic: this.u.topic, partitions: [s.partition] }]);
      this.notify();
    } else if (i < msgs.length) {
      // Paused or stopped mid-batch: re-fetch from the next undelivered offset on resume.
      this.consumer?.seek({ topic: this.u.topic, partition: s.partition, offset: String(s.next) });
    }
  }

  /**
   * Offsets [from, to) of a partition are known to hold no data record (transaction commit/abort
   * markers, aborted transactions): move past them, so a bounded read whose stop offset lies just
   * after a marker finishes instead of waiting for a record that will never come. Only contiguous
   * stretches count (`from` must not be beyond what was covered).
   */
  private skipEmpty(s: PartitionState, from: bigint, to: bigint): void {
    if (from > s.next || to <= s.next) return;
    const end = s.stop !== undefined && to > s.stop ? s.stop : to;
    this.ledger.cover(s.partition, s.next, end, 0);
    s.next = end;
    if (s.stop !== undefined && s.next >= s.stop) s.finished = true;
  }

  /**
   * kafkajs does not call eachBatch for a fetch that held only control records or aborted
   * messages; it reports it through the END_BATCH_PROCESS instrumentation event with batchSize 0.
   */
  private onFilteredBatch(e: {
    partition: number;
    batchSize: number;
    firstOffset: string | null;
    lastOffset: string;
  }) {
    if (e.batchSize !== 0 || e.firstOffset === null) return;
    const s = this.parts.get(e.partition);
    if (!s || s.finished || s.paused) return;
    this.skipEmpty(s, BigInt(e.firstOffset), BigInt(e.lastOffset) + 1n);
    if (s.finished) {
      this.consumer?.pause([{ topic: this.u.topic, partitions: [s.partition] }]);
      this.notify();
    }
  }

  /** Joins the throwaway fetch group with all chosen partitions and seeks to the start offsets. */
  async start(): Promise<void> {
    if (this.allFinished()) return;
    const chosen = [...this.parts.keys()];
    const topic = this.u.topic;
    const kafka = kafkaClient(this.u, this.client, 'kappa-ingest');
    const assigner = () => ({
      name: 'KappaAssigner',
      version: 1,
      async assign({ members }: { members: { memberId: string }[] }) {
        const ids = members.map((m) => m.memberId).sort();
        return ids.map((memberId, k) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 1,
            assignment: { [topic]: k === 0 ? chosen : [] },
            userData: Buffer.alloc(0),
          }),
        }));
      },
      protocol({ topics }: { topics: string[] }) {
        return {
          name: 'KappaAssigner',
          metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
        };
      },
    });
    const consumer = kafka.consumer({
      groupId: this.fetchGroup,
      partitionAssigners: [assigner],
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      sessionTimeout: 30000,
      retry: {
        retries: 5,
        initialRetryTime: 300,
        maxRetryTime: 10000,
        ...this.client.kafka.retry,
        restartOnFailure: async () => false,
      },
      ...this.client.consumer,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (ev) => this.fail(ev.payload.error));
    consumer.on(consumer.events.END_BATCH_PROCESS, (ev) => this.onFilteredBatch(ev.payload));
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: true,
        eachBatch: (p) => this.eachBatch(p),
      });
    } catch (e) {
      throw new RuntimeError(`${this.u.uri}: cannot start consuming: ${kafkaErrorText(e)}`);
    }
    for (const s of this.parts.values()) {
      if (s.finished) consumer.pause([{ topic, partitions: [s.partition] }]);
      else consumer.seek({ topic, partition: s.partition, offset: String(s.next) });
    }
  }

  async *batches(): AsyncGenerator<RowBatch> {
    await this.start();
    for (;;) {
      if (this.failure) throw this.failure;
      const p = this.pending;
      if (p) {
        this.pending = undefined;
        yield p.batch;
        this.ledger.cover(p.cover.partition, p.cover.from, p.cover.to, p.cover.records);
        p.ack();
        continue;
      }
      if (this.stopping) return;
      if (this.allFinished()) {
        this.verifyComplete();
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, TICK_MS);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      if (!this.pending && !this.failure) yield emptyBatch;
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

  /** Commits the next offset of every partition to `--group` (after a clean end only). */
  async commit(): Promise<void> {
    if (!this.group || this.failure) return;
    const partitions = [...this.parts.values()].map((s) => ({
      partition: s.partition,
      offset: String(s.next),
    }));
    try {
      await this.admin.setOffsets({ groupId: this.group, topic: this.u.topic, partitions });
    } catch (e) {
      throw new RuntimeError(
        `${this.u.uri}: cannot commit offsets for group '${this.group}': ${kafkaErrorText(e)}`,
        'the group must have no active members (kappa commits as a standalone consumer)',
      );
    }
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.pending?.ack();
    if (this.consumer) {
      await this.consumer.disconnect().catch(() => {});
      if (!this.failure) await this.admin.deleteGroups([this.fetchGroup]).catch(() => {});
    }
    await this.admin.disconnect().catch(() => {});
  }
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
  const admin = kafkaClient(u, client, 'kappa-ingest').admin();
  try {
    await admin.connect();
  } catch (e) {
    throw new RuntimeError(`${u.uri}: cannot connect to ${u.brokers.join(',')}: ${kafkaErrorText(e)}`);
  }
  const src = new KafkaSource(u, client, admin, o.group, idleMs, driftMs);
  try {
    await src.init(partitions, from, until);
  } catch (e) {
    await admin.disconnect().catch(() => {});
    throw e;
  }
  return src;
}
