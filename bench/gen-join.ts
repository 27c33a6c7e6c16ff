/**
 * Seeded inputs of the join benchmark (scenario 8, issue 12): rides from `bench/gen.ts` and their
 * fares. 90% of the rides get one fare within 2 h of the ride, 5% a fare 2–3 h after it (outside
 * the join interval), 5% none. Fares are written in event-time order shuffled within 5 minutes
 * (bounded out-of-orderness: `kappa ingest --max-out-of-orderness 5m` makes nothing late).
 * Fare lines: `{"event_time":"…Z","fare_id":1,"ride_id":1,"amount":17.5}`.
 *
 * CLI: `node dist/bench/gen-join.js RECORDS RIDES_PATH FARES_PATH [--seed N]`: RECORDS counts rides
 * and fares together (rides = RECORDS / 1.95).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { generateRides, mulberry32 } from './gen.js';

const HOUR = 3_600_000;
const SHUFFLE_MS = 5 * 60_000;

/** Writes about `records` rides + fares (NDJSON) to two files; deterministic for the seed. */
export function writeJoinInputs(records: number, ridesPath: string, faresPath: string, seed = 42): void {
  const rides = Math.max(1, Math.round(records / 1.95));
  const rnd = mulberry32(seed + 1);
  const fares: { ts: number; s: number; line: string }[] = [];
  const fd = openSync(ridesPath, 'w');
  let buf = '';
  let fareId = 0;
  try {
    for (const r of generateRides({ count: rides, seed })) {
      buf += `${JSON.stringify(r)}\n`;
      if (buf.length > 1 << 20) {
        writeSync(fd, buf);
        buf = '';
      }
      const u = rnd();
      if (u < 0.05) continue;
      const t =
        Date.parse(r.event_time) +
        (u < 0.1 ? 2 * HOUR + 1 + Math.floor(rnd() * HOUR) : Math.floor(rnd() * 2 * HOUR));
      const line = JSON.stringify({
        event_time: new Date(t).toISOString(),
        fare_id: ++fareId,
        ride_id: r.ride_id,
        amount: Math.round(rnd() * 8000) / 100,
      });
      fares.push({ ts: t, s: t + rnd() * SHUFFLE_MS, line });
    }
    if (buf.length > 0) writeSync(fd, buf);
  } finally {
    closeSync(fd);
  }
  fares.sort((a, b) => a.s - b.s);
  const fd2 = openSync(faresPath, 'w');
  try {
    buf = '';
    for (const f of fares) {
      buf += `${f.line}\n`;
      if (buf.length > 1 << 20) {
        writeSync(fd2, buf);
        buf = '';
      }
    }
    if (buf.length > 0) writeSync(fd2, buf);
  } finally {
    closeSync(fd2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [n, rides, fares, flag, seed] = process.argv.slice(2);
  if (!n || !rides || !fares || !/^\d+$/.test(n)) {
    process.stderr.write('usage: gen-join.js RECORDS RIDES_PATH FARES_PATH [--seed N]\n');
    process.exit(2);
  }
  writeJoinInputs(Number(n), rides, fares, flag === '--seed' ? Number(seed) : 42);
}
