/**
 * Start and stop positions of a Kafka read, one grammar for `ingest` (and later `replay`):
 *
 *   --from  earliest | latest | committed | <ISO time> | <partition:offset,…>
 *   --until latest | <ISO time> | <partition:offset,…>
 *
 * Start positions are inclusive (the first offset read); stop positions are exclusive (the first
 * offset not read), so `--from 0:100 --until 0:200` reads offsets 100..199 of partition 0.
 * `--until latest` is the high watermark (log end offset) when the run starts; `--until <time>` is
 * the first offset whose timestamp is >= time (Kafka's ListOffsets by timestamp). With an offset
 * list, partitions not named start at earliest (`--from`) or are read to latest (`--until`).
 * `committed` needs `--group`; a partition without a committed offset starts at earliest
 * (auto.offset.reset=earliest).
 */
import { DateTime } from 'luxon';
import { UsageError } from '../../errors.js';
import type { KafkaAdminClient } from './adapter.js';

export type PositionSpec =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'committed' }
  | { kind: 'time'; ms: number }
  | { kind: 'offsets'; offsets: Map<number, bigint> };

/** Parses a position. `flag` names the flag in errors; `allowed` lists the keywords accepted. */
export function parsePosition(v: string, flag: string, allowed: readonly string[]): PositionSpec {
  const s = v.trim();
  if (allowed.includes(s)) return { kind: s } as PositionSpec;
  if (/^\d+:\d+(,\d+:\d+)*$/.test(s)) {
    const offsets = new Map<number, bigint>();
    for (const part of s.split(',')) {
      const [p, o] = part.split(':');
      if (offsets.has(Number(p))) throw new UsageError(`${flag}: partition ${p} given twice in '${v}'`);
      offsets.set(Number(p), BigInt(o));
    }
    return { kind: 'offsets', offsets };
  }
  const t = DateTime.fromISO(s, { zone: 'utc', setZone: true });
  if (t.isValid && /^\d{4}-\d{2}-\d{2}/.test(s)) return { kind: 'time', ms: t.toMillis() };
  throw new UsageError(
    `${flag}: '${v}' is not a position`,
    `use ${allowed.join(' | ')} | an ISO time like 2024-05-01T12:00:00Z | partition:offset,… like 0:1200,1:900`,
  );
}

/** Parses a partition list like `0,2,5-7`. */
export function parsePartitionList(v: string): number[] {
  const out = new Set<number>();
  for (const part of v.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw new UsageError(`--partitions: '${v}' is not a list like 0,2,5-7`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`--partitions: empty range '${part}'`);
    for (let p = a; p <= b; p++) out.add(p);
  }
  return [...out].sort((x, y) => x - y);
}

/** Low and high watermark (log start and end offsets) per partition. */
export function partitionBounds(
  admin: KafkaAdminClient,
  topic: string,
): Promise<Map<number, { low: bigint; high: bigint }>> {
  return admin.offsetBounds(topic);
}

async function byTime(admin: KafkaAdminClient, topic: string, ms: number, high: Map<number, bigint>) {
  const m = new Map<number, bigint>();
  // No record at or after the time: the position is the log end.
  for (const [p, o] of await admin.offsetsForTime(topic, ms)) m.set(p, o ?? high.get(p) ?? 0n);
  return m;
}

/** Resolves a start spec to the first offset to read of each partition in `partitions`. */
export async function resolveStart(
  admin: KafkaAdminClient,
  topic: string,
  partitions: number[],
  spec: PositionSpec,
  bounds: Map<number, { low: bigint; high: bigint }>,
  group: string | undefined,
): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  const low = (p: number) => bounds.get(p)?.low ?? 0n;
  const high = (p: number) => bounds.get(p)?.high ?? 0n;
  if (spec.kind === 'committed') {
    if (!group) throw new UsageError('--from committed needs --group ID');
    const committed = await admin.committedOffsets(group, topic);
    for (const p of partitions) {
      const c = committed.get(p);
      // biome-ignore lint/complexity/useMathMinMax: offsets are bigint, which Math.max does not take
      out.set(p, c === undefined ? low(p) : c < low(p) ? low(p) : c);
    }
    return out;
  }
  const times =
    spec.kind === 'time'
      ? await byTime(admin, topic, spec.ms, new Map(partitions.map((p) => [p, high(p)])))
      : undefined;
  for (const p of partitions) {
    let o: bigint;
    if (spec.kind === 'earliest') o = low(p);
    else if (spec.kind === 'latest') o = high(p);
    else if (spec.kind === 'time') o = times?.get(p) ?? high(p);
    else o = spec.offsets.get(p) ?? low(p);
    out.set(p, o < low(p) ? low(p) : o);
  }
  return out;
}

/** Resolves a stop spec to the exclusive end offset of each partition. */
export async function resolveStop(
  admin: KafkaAdminClient,
  topic: string,
  partitions: number[],
  spec: PositionSpec,
  bounds: Map<number, { low: bigint; high: bigint }>,
): Promise<Map<number, bigint>> {
  const out = new Map<number, bigint>();
  const high = (p: number) => bounds.get(p)?.high ?? 0n;
  const times =
    spec.kind === 'time'
      ? await byTime(admin, topic, spec.ms, new Map(partitions.map((p) => [p, high(p)])))
      : undefined;
  for (const p of partitions) {
    if (spec.kind === 'latest') out.set(p, high(p));
    else if (spec.kind === 'time') out.set(p, times?.get(p) ?? high(p));
    else if (spec.kind === 'offsets') out.set(p, spec.offsets.get(p) ?? high(p));
    else throw new UsageError(`--until: '${spec.kind}' is not a stop position`);
  }
  return out;
}
