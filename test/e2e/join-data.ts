/**
 * Generated inputs of the join tests (issue 12): rides and fares, each fare up to 2 h after its
 * ride, shuffled within a bounded out-of-orderness. Shared by join.test.ts and
 * join-checkpoints.test.ts.
 */
import { writeFileSync } from 'node:fs';

export const HOUR = 3_600_000;
/** Out-of-orderness of the generated inputs (ms). */
export const BOUND = 5 * 60_000;

/** Rows in ts order, then shuffled so that no row is more than `bound` ms behind an earlier one. */
export function shuffleWithin<T extends { ts: number }>(rows: T[], bound: number, rnd: () => number): T[] {
  return rows
    .map((r) => ({ r, s: r.ts + rnd() * bound }))
    .sort((a, b) => a.s - b.s)
    .map((x) => x.r);
}

export function writeNdjson(path: string, rows: unknown[]): void {
  writeFileSync(path, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
}

/**
 * Writes `<dir>/rides.ndjson` and `<dir>/fares.ndjson`: rides (one per ~20 s) and fares; most rides
 * get a fare within 2 h, some none, some a second one, some fares come too late (more than 2 h
 * after the ride) or for no ride at all; one fare exactly at the bound. Consumes `rnd`.
 */
export function writeRidesAndFares(dir: string, rnd: () => number, count = 30_000): void {
  const rides: { ts: number; ride_id: number; zone: string }[] = [];
  const fares: { ts: number; fare_id: number; ride_id: number; amount: number }[] = [];
  let ts = Date.UTC(2024, 0, 1);
  let fareId = 0;
  for (let i = 1; i <= count; i++) {
    ts += Math.floor(rnd() * 40_000);
    rides.push({ ts, ride_id: i, zone: `Z${Math.floor(rnd() * 50)}` });
    const u = rnd();
    if (u < 0.1) continue; // no fare
    const delay = u < 0.15 ? 2 * HOUR + 1 + Math.floor(rnd() * HOUR) : Math.floor(rnd() * (2 * HOUR + 1));
    fares.push({ ts: ts + delay, fare_id: ++fareId, ride_id: i, amount: Math.round(rnd() * 5000) / 100 });
    if (u > 0.95)
      fares.push({ ts: ts + Math.floor(rnd() * 2 * HOUR), fare_id: ++fareId, ride_id: i, amount: 1 });
    if (u > 0.98) fares.push({ ts: ts + 1000, fare_id: ++fareId, ride_id: 1_000_000 + i, amount: 2 });
  }
  fares.push({ ts: rides[5].ts + 2 * HOUR, fare_id: ++fareId, ride_id: rides[5].ride_id, amount: 3 }); // the bound itself
  writeNdjson(`${dir}/rides.ndjson`, shuffleWithin(rides, BOUND, rnd));
  writeNdjson(`${dir}/fares.ndjson`, shuffleWithin(fares, BOUND, rnd));
}
