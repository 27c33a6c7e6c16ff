/**
 * Progress display and end-of-run summary, both on stderr.
 *
 * One bar per pipeline (issue 8 item 32): only the first stage of a pipeline draws a bar, and only
 * when stderr is a TTY and `--quiet` is not given (see `drawsBar`). The first stage is a source
 * (`ingest`), or a stage whose stdin is not a pipe or socket (`kappa sink T < saved.kappa`); a
 * stage reading another stage's output through a pipe draws nothing while it runs, since every
 * stage shares the terminal line. With back-pressure the source's progress is the pipeline's. The
 * bar shows bytes or rows done, rate and ETA when the total is known.
 *
 * The summary line is printed at the end of every run unless `--quiet`: records in/out, bad,
 * bytes, elapsed, records/s, plus any extra counters the command adds (late records, partitions
 * written, …). After SIGINT/SIGTERM the bar is stopped at once (terminal restored: cursor shown,
 * line wrap back on) and no summary is printed: the interruption's own line replaces it.
 */
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import type cliProgress from 'cli-progress';
import { atInterrupt, interruptedBy } from './signals.js';

/** What decides whether a stage draws a progress bar (see `drawsBar`). */
export interface BarContext {
  /** `--quiet` given. */
  quiet: boolean;
  /** stderr is a terminal. */
  stderrIsTTY: boolean;
  /** The stage is a source (ingest). */
  source: boolean;
  /** What stdin is: 'pipe' (FIFO or socket: another stage, most likely), 'file', 'tty' or 'other'. */
  stdin: 'pipe' | 'file' | 'tty' | 'other';
}

/**
 * True when this stage draws the pipeline's one progress bar: not quiet, stderr is a TTY, and the
 * stage is first in its pipeline (a source, or its stdin is not a pipe).
 */
export function drawsBar(c: BarContext): boolean {
  if (c.quiet || !c.stderrIsTTY) return false;
  return c.source || c.stdin !== 'pipe';
}

/** Classifies file descriptor 0 for `drawsBar` ('other' if it cannot be inspected). */
export function stdinKind(): BarContext['stdin'] {
  try {
    const st = fstatSync(0);
    if (st.isFIFO() || st.isSocket()) return 'pipe';
    if (st.isFile()) return 'file';
    if (st.isCharacterDevice()) return 'tty';
    return 'other';
  } catch {
    return 'other';
  }
}

export interface RunStats {
  recordsIn: number;
  recordsOut: number;
  bad: number;
  bytes: number;
  /** Extra named counters printed after the standard ones, e.g. `{ late: 3, files: 12 }`. */
  extra: Record<string, number | string>;
}

export class Progress {
  readonly stats: RunStats = { recordsIn: 0, recordsOut: 0, bad: 0, bytes: 0, extra: {} };
  private readonly started = process.hrtime.bigint();
  private bar: cliProgress.SingleBar | undefined;
  private lastUpdate = 0;
  private detail = '';
  private unregister: (() => void) | undefined;

  constructor(
    /** Command name used as the summary prefix, e.g. `ingest`. */
    readonly command: string,
    readonly quiet = false,
    /** Unit of the bar: 'bytes' or 'rows'. */
    readonly unit: 'bytes' | 'rows' = 'rows',
    total?: number,
    /** True for a source stage (ingest), which draws the pipeline's bar (see `drawsBar`). */
    source = false,
  ) {
    if (drawsBar({ quiet, stderrIsTTY: process.stderr.isTTY === true, source, stdin: stdinKind() })) {
      // cli-progress (CommonJS) is required here, when a bar is drawn: most stages of a pipeline
      // draw none and skip its 10-15 ms of loading.
      const bars = createRequire(import.meta.url)('cli-progress') as typeof cliProgress;
      this.bar = new bars.SingleBar(
        {
          stream: process.stderr,
          format: total
            ? `kappa ${command} [{bar}] {percentage}% | {value}/{total}${unit === 'rows' ? ' rows' : ''} | {rate}/s | ETA {eta_formatted} {detail}`
            : `kappa ${command} | {value}${unit === 'rows' ? ' rows' : ''} | {rate}/s | {elapsed}s {detail}`,
          hideCursor: true,
          formatValue: (v: number, _o: unknown, type: string) =>
            unit === 'bytes' && (type === 'value' || type === 'total') ? formatBytes(v) : String(v),
          etaBuffer: 50,
          fps: 5,
        },
        bars.Presets.shades_classic,
      );
      this.bar.start(total ?? 0, 0, { rate: '0', detail: '', elapsed: '0' });
      this.unregister = atInterrupt(() => this.stopBar());
    }
  }

  /** Sets the bar's total when it becomes known (e.g. after listing files). */
  setTotal(total: number): void {
    this.bar?.setTotal(total);
  }

  /** Free text shown after the bar (e.g. per-partition Kafka lag). */
  setDetail(detail: string): void {
    this.detail = detail;
  }

  /** Updates the bar to `done` units; throttled to keep it off the hot path. */
  update(done: number): void {
    if (!this.bar) return;
    const now = Date.now();
    if (now - this.lastUpdate < 200) return;
    this.lastUpdate = now;
    const secs = this.elapsedMs() / 1000;
    this.bar.update(done, {
      rate:
        secs <= 0
          ? '0'
          : this.unit === 'bytes'
            ? formatBytes(done / secs)
            : Math.round(done / secs).toLocaleString('en-US'),
      detail: this.detail,
      elapsed: secs.toFixed(0),
    });
  }

  elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }

  /** Stops the bar, restoring the terminal (cursor, line wrap). Idempotent. */
  stopBar(): void {
    const bar = this.bar;
    this.bar = undefined;
    this.unregister?.();
    this.unregister = undefined;
    bar?.stop();
  }

  /**
   * Stops the bar and prints the summary line on stderr (unless quiet, or the run was interrupted
   * by a signal: the interruption's line is then the only one).
   */
  finish(status = 'done'): void {
    this.stopBar();
    if (this.quiet || interruptedBy()) return;
    process.stderr.write(`${this.summary(status)}\n`);
  }

  /** The summary line, e.g. `kappa ingest: done: 3,000,000 in, 3,000,000 out, 0 bad, 120.4 MB, 9.81 s, 305,810 records/s`. */
  summary(status = 'done'): string {
    const s = this.stats;
    const secs = this.elapsedMs() / 1000;
    const rate = secs > 0 ? Math.round(s.recordsIn / secs) : 0;
    const parts = [
      `${fmt(s.recordsIn)} in`,
      `${fmt(s.recordsOut)} out`,
      `${fmt(s.bad)} bad`,
      ...Object.entries(s.extra).map(([k, v]) => `${typeof v === 'number' ? fmt(v) : v} ${k}`),
      ...(s.bytes > 0 ? [formatBytes(s.bytes)] : []),
      `${secs.toFixed(2)} s`,
      `${fmt(rate)} records/s`,
    ];
    return `kappa ${this.command}: ${status}: ${parts.join(', ')}`;
  }
}

/**
 * `n` with thousands separators, as `n.toLocaleString('en-US')` writes it (`3,000,000`). Integers
 * (but -0) are grouped here: the first `toLocaleString` of a process sets up ICU's number formatting, about
 * 10-15 ms of the start-up of a stage that prints one summary line. Other numbers go to ICU.
 */
export function fmt(n: number): string {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) return n.toLocaleString('en-US');
  const digits = String(Math.abs(n));
  let out = '';
  for (let end = digits.length; end > 0; end -= 3) {
    const part = digits.slice(Math.max(0, end - 3), end);
    out = out ? `${part},${out}` : part;
  }
  return n < 0 ? `-${out}` : out;
}

/** Human-readable byte count in SI units (kB = 1000 bytes), e.g. `120.4 MB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
