/**
 * Fixtures of the `kappa state-edit` tests: flight records from the bundled Parquet file (loaded and
 * numbered by DuckDB, which also computes the expectations), a WindowOperator run over them that is
 * stopped with a savepoint written by the savepoint module (pipelines cannot take savepoints yet),
 * and a runner that restores a savepoint into a new WindowOperator and continues.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { ArrayCollector } from '../../src/ops/operator.js';
import { compilePath } from '../../src/ops/path.js';
import { parseAggs } from '../../src/ops/window/aggregate.js';
import { WindowOperator, type WindowSpec } from '../../src/ops/window/operator.js';
import { openSavepoint } from '../../src/state/savepoint/read.js';
import { writeSavepoint } from '../../src/state/savepoint/write.js';
import type { Rec } from '../../src/stream/protocol.js';
import { FLIGHTS } from '../helpers.js';

export interface Flight {
  i: number;
  ts: number;
  origin: string;
  delay: number | null;
}

export type Row = Record<string, string | number | boolean | null>;

/** Rows of a query as JSON-ish objects. */
export async function rows(con: DuckDBConnection, sql: string): Promise<Row[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJson() as Row[];
}

/**
 * Creates table `f` (i, ts epoch ms, origin, delay) of the flights matching `where`, numbered in a
 * total order (date, origin, destination, delay, distance), and returns its rows in that order.
 */
export async function loadFlights(con: DuckDBConnection, where: string): Promise<Flight[]> {
  await con.run(`CREATE OR REPLACE TABLE f AS
    SELECT (row_number() OVER (ORDER BY date, origin, destination, delay, distance) - 1)::INTEGER AS i,
           epoch_ms(date) AS ts, origin, delay
    FROM '${FLIGHTS}' WHERE ${where}`);
  return (await rows(con, 'SELECT i, ts, origin, delay FROM f ORDER BY i')).map((r) => ({
    i: Number(r.i),
    ts: Number(r.ts),
    origin: String(r.origin),
    delay: r.delay === null ? null : Number(r.delay),
  }));
}

export const AGGS = 'count, sum(delay)';

/** A window operator keyed by origin with count and sum(delay). */
export async function windowOp(window: WindowSpec, maxKeyGroups = 128): Promise<WindowOperator> {
  const op = new WindowOperator({
    window,
    key: { kind: 'field', path: 'origin', get: compilePath('origin') },
    aggs: parseAggs(AGGS),
    stateCache: 500, // part of the state is in LevelDB at the snapshot
    maxKeyGroups,
  });
  await op.open({ kappa: 1, schema: { origin: 'string', delay: 'int64' } });
  return op;
}

/**
 * Feeds flights[from, to) to `op`, with a watermark `ts - 1` after every 100th record (by global
 * index), as a bounded-out-of-orderness-0 source over time-ordered records would.
 * @returns the last watermark sent
 */
export async function feed(
  op: WindowOperator,
  flights: Flight[],
  from: number,
  to: number,
  out: ArrayCollector,
  wm = Number.NEGATIVE_INFINITY,
): Promise<number> {
  for (let i = from; i < to; i++) {
    const f = flights[i];
    const r: Rec = { ts: f.ts, key: null, value: { origin: f.origin, delay: f.delay } };
    await op.record(r, out);
    if (i % 100 === 99) {
      wm = f.ts - 1;
      await op.watermark(wm, out);
    }
  }
  return wm;
}

/**
 * Runs a window over flights[0, stop) and writes a savepoint of it to `dir` (operator `window-1`,
 * source `ingest-1` at position `stop`).
 * @returns the results emitted before the savepoint and the savepoint's watermark
 */
export async function savepointAt(
  dir: string,
  window: WindowSpec,
  flights: Flight[],
  stop: number,
): Promise<{ before: Rec[]; wm: number }> {
  const op = await windowOp(window);
  try {
    const out = new ArrayCollector();
    const wm = await feed(op, flights, 0, stop, out);
    await writeSavepoint(dir, {
      metadata: {
        pipeline: 'flights',
        maxKeyGroups: 128,
        sources: [{ uid: 'ingest-1', positions: { 'flights-3m.parquet': stop }, watermark: wm }],
      },
      operators: [{ uid: 'window-1', ...(await op.snapshot()) }],
    });
    return { before: out.records, wm };
  } finally {
    await op.close();
  }
}

/**
 * Restores operator `uid` of the savepoint at `dir` into a new window operator, feeds
 * flights[from, end) and ends the input.
 * @returns the results emitted after the restore
 */
export async function resume(
  dir: string,
  window: WindowSpec,
  flights: Flight[],
  from: number,
  uid = 'window-1',
): Promise<Rec[]> {
  const sp = await openSavepoint(dir);
  const op = await windowOp(window, sp.metadata.maxKeyGroups);
  try {
    const meta = sp.operator(uid);
    if (!meta) throw new Error(`no operator ${uid}`);
    await op.restore({ ...meta, entries: sp.entries(uid), maxKeyGroups: sp.metadata.maxKeyGroups });
    const out = new ArrayCollector();
    await feed(op, flights, from, flights.length, out, meta.watermark ?? Number.NEGATIVE_INFINITY);
    await op.end(out);
    return out.records;
  } finally {
    await op.close();
  }
}

/** A window result as a comparable line: key, start, end, count, sum. */
export function resultLine(r: Rec): string {
  const v = r.value as Record<string, unknown>;
  return `${v.origin} ${v.window_start} ${v.window_end} ${v.count} ${v.sum_delay}`;
}

/** A DuckDB row (origin, ws, we, n, s) as the same line. */
export function rowLine(r: Row): string {
  return `${r.origin} ${r.ws} ${r.we} ${r.n} ${r.s}`;
}
