/**
 * Seeded synthetic ride/fare events for benchmarks and tests: any size, byte-identical for the same
 * (count, seed, start) on every machine.
 *
 * One NDJSON object per line, event time non-decreasing (so windows over it drop nothing as late):
 * `{"event_time":"2019-06-01T00:00:00.250Z","ride_id":1,"driver_id":"D004211","zone":"Z117",
 * "fare":17.5,"tip":2.1,"distance_km":4.82,"passengers":1,"payment":"card"}`.
 * Events arrive at about `ratePerSec` per second of event time on average, so 1M records span
 * ~11.6 days at the default 1 per second: enough hours for 1h windows to close and be evicted.
 *
 * CLI: `node dist/bench/gen.js COUNT [--seed N] [--start ISO] [--rate PER_SEC] > rides.ndjson`.
 */
import { writeSync } from 'node:fs';

/** Options of {@link generateRides}. */
export interface RideOptions {
  /** Number of records to produce. */
  count: number;
  /** PRNG seed (32-bit integer); default 42. */
  seed?: number;
  /** Event time of the first record, epoch ms; default 2019-06-01T00:00:00Z. */
  startMs?: number;
  /** Mean events per second of event time; default 1. */
  ratePerSec?: number;
  /** Number of distinct drivers; default 10,000. */
  drivers?: number;
  /** Number of distinct pickup zones; default 263 (as NYC taxi zones). */
  zones?: number;
}

/** One synthetic ride event (all times epoch ms before formatting). */
export interface Ride {
  event_time: string;
  ride_id: number;
  driver_id: string;
  zone: string;
  fare: number;
  tip: number;
  distance_km: number;
  passengers: number;
  payment: string;
}

/**
 * mulberry32: a small 32-bit-state PRNG (Tommy Ettinger, public domain; as widely published, e.g.
 * in the "bryc/code" PRNG collection). Returns floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PAYMENTS = ['card', 'card', 'card', 'cash', 'app'];

/** Yields `count` rides, deterministic for the options. */
export function* generateRides(opts: RideOptions): Generator<Ride> {
  const rnd = mulberry32(opts.seed ?? 42);
  const drivers = opts.drivers ?? 10_000;
  const zones = opts.zones ?? 263;
  const meanGapMs = 1000 / (opts.ratePerSec ?? 1);
  let t = opts.startMs ?? Date.UTC(2019, 5, 1);
  for (let i = 1; i <= opts.count; i++) {
    // exponential inter-arrival gaps (Poisson arrivals), whole milliseconds
    t += Math.floor(-Math.log(1 - rnd()) * meanGapMs);
    // skewed zone popularity: squaring a uniform favours low zone numbers
    const zone = Math.floor(rnd() * rnd() * zones);
    const distance = Math.round((0.5 + -Math.log(1 - rnd()) * 4) * 100) / 100;
    const fare = Math.round((3 + distance * 2.5 + rnd() * 3) * 100) / 100;
    yield {
      event_time: new Date(t).toISOString(),
      ride_id: i,
      driver_id: `D${String(Math.floor(rnd() * drivers)).padStart(6, '0')}`,
      zone: `Z${String(zone).padStart(3, '0')}`,
      fare,
      tip: Math.round(fare * rnd() * 0.3 * 100) / 100,
      distance_km: distance,
      passengers: 1 + Math.floor(rnd() * rnd() * 4),
      payment: PAYMENTS[Math.floor(rnd() * PAYMENTS.length)]!,
    };
  }
}

/** Writes rides as NDJSON to a file descriptor (default stdout) in ~1 MiB blocks. */
export function writeRides(opts: RideOptions, fd = 1): void {
  let buf = '';
  for (const r of generateRides(opts)) {
    buf += `${JSON.stringify(r)}\n`;
    if (buf.length > 1 << 20) {
      writeSync(fd, buf);
      buf = '';
    }
  }
  if (buf.length > 0) writeSync(fd, buf);
}

function main(argv: string[]): void {
  const count = Number(argv[0]);
  if (!Number.isInteger(count) || count < 0) {
    process.stderr.write('usage: gen.js COUNT [--seed N] [--start ISO] [--rate PER_SEC]\n');
    process.exit(2);
  }
  const opts: RideOptions = { count };
  for (let i = 1; i < argv.length; i += 2) {
    const v = argv[i + 1] ?? '';
    if (argv[i] === '--seed') opts.seed = Number(v);
    else if (argv[i] === '--start') opts.startMs = Date.parse(v);
    else if (argv[i] === '--rate') opts.ratePerSec = Number(v);
    else {
      process.stderr.write(`gen.js: unknown option ${argv[i]}\n`);
      process.exit(2);
    }
  }
  writeRides(opts);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));
