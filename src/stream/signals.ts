/**
 * SIGINT / SIGTERM for every command, installed once by `main()` (src/cli.ts).
 *
 * A signal never turns into an end-of-stream line (man kappa-stream(5); issue 8 items 8 and 13). On the
 * first signal the handler records it, restores the terminal at once (progress bars register an
 * `atInterrupt` hook) and wakes whoever waits in `raceInterrupt()`. The running command then
 * stops cooperatively: the source runtime and every stdin reader wrapped with `interruptible()`
 * throw an `InterruptedError`, so no end line is written and sinks take their abort path (commit
 * nothing, remove in-progress files). `main()` prints the error's one line on stderr and exits with
 * 130 (SIGINT) or 143 (SIGTERM), the shell's 128 + signal number.
 *
 * Should the command not get there within `GRACE_MS` (blocked on back-pressure, say), the handler
 * runs the registered `beforeForcedExit` cleanups (bounded by the same grace), prints the line and
 * exits. A second signal exits at once.
 */
import { ExitCode, KappaError } from '../errors.js';

/** The signals that stop a command. */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/** Exit code for a stop by signal: 128 + the signal number (SIGINT 2 -> 130, SIGTERM 15 -> 143). */
export function signalExitCode(sig: StopSignal): 130 | 143 {
  return sig === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm;
}

/**
 * The run was stopped by SIGINT or SIGTERM. Exit 130/143. `message` is the whole stderr line after
 * `kappa <command>: ` and says what happened to the output (e.g. "nothing committed").
 */
export class InterruptedError extends KappaError {
  constructor(
    readonly signal: StopSignal,
    message = `interrupted by ${signal}; no end-of-stream line was written`,
  ) {
    super(message, signalExitCode(signal));
  }
}

/** Milliseconds a command gets to stop by itself after a signal before the handler exits for it. */
export const GRACE_MS = 10_000;

let received: StopSignal | undefined;
/** Callbacks of pending `raceInterrupt` calls; each removes itself once its promise settles. */
const waiters = new Set<(e: InterruptedError) => void>();
const immediate = new Set<() => void>();
const cleanups = new Set<() => Promise<void>>();
let installed = false;
let commandName = 'kappa';

/** Callbacks of `deferFirstSignal` (several stages fused by `kappa run` may register one each). */
const deferrals = new Set<(sig: StopSignal) => void>();
let deferredSignal: StopSignal | undefined;

/**
 * Stop-with-savepoint (checkpointing pipelines, man kappa-checkpoints.7): from now on the first
 * SIGINT/SIGTERM does not interrupt the run; it calls `onSignal` instead (the source takes a
 * savepoint and ends the stream with a stop line; a later stage keeps going until that stop line
 * arrives). A second signal interrupts as usual. Returns a function that undoes the deferral.
 */
export function deferFirstSignal(onSignal: (sig: StopSignal) => void): () => void {
  const f = (sig: StopSignal) => onSignal(sig);
  deferrals.add(f);
  if (deferredSignal) onSignal(deferredSignal);
  return () => {
    deferrals.delete(f);
  };
}

/** The deferred first signal (stop-with-savepoint requested), or undefined. */
export function stopRequestedBy(): StopSignal | undefined {
  return deferredSignal;
}

/** The signal that stopped this run, or undefined while none arrived. */
export function interruptedBy(): StopSignal | undefined {
  return received;
}

/** Throws `InterruptedError` (with `message`, if given) once a signal arrived; else returns. */
export function throwIfInterrupted(message?: (sig: StopSignal) => string): void {
  if (received) throw new InterruptedError(received, message?.(received));
}

/**
 * Settles like `p`, unless a signal arrives first: then resolves with an `InterruptedError` (it
 * does not reject). Unlike `Promise.race` with one long-lived promise, it leaves nothing behind once
 * `p` settles, so it can run once per batch for days.
 */
export function raceInterrupt<T>(p: Promise<T>): Promise<T | InterruptedError> {
  if (received) return Promise.resolve(new InterruptedError(received));
  return new Promise<T | InterruptedError>((resolve, reject) => {
    const onSignal = (e: InterruptedError) => resolve(e);
    waiters.add(onSignal);
    p.then(
      (v) => {
        waiters.delete(onSignal);
        resolve(v);
      },
      (e: unknown) => {
        waiters.delete(onSignal);
        reject(e);
      },
    );
  });
}

function wakeWaiters(sig: StopSignal): void {
  const e = new InterruptedError(sig);
  for (const w of [...waiters]) w(e);
  waiters.clear();
}

/**
 * Wraps an async iterable (stdin) so that a pending `next()` rejects with `InterruptedError` as
 * soon as a signal arrives, even while no data comes (a producer that keeps its pipe open). The
 * underlying iterator is then returned (the stream destroyed).
 */
export function interruptible<T>(source: AsyncIterable<T>): AsyncIterable<T>;
export function interruptible<T, D>(source: AsyncIterable<T> | D): AsyncIterable<T> | D;
export function interruptible<T, D>(source: AsyncIterable<T> | D): AsyncIterable<T> | D {
  // An in-process channel (`kappa run`) is not a byte stream: signals reach its stages directly.
  if (typeof source !== 'object' || source === null || !(Symbol.asyncIterator in source)) return source;
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      return {
        async next(): Promise<IteratorResult<T>> {
          if (received) throw await stop(it);
          const r = await raceInterrupt(it.next());
          if (r instanceof InterruptedError) throw await stop(it);
          return r;
        },
        async return(): Promise<IteratorResult<T>> {
          await it.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

async function stop<T>(it: AsyncIterator<T>): Promise<InterruptedError> {
  // Returning a stream iterator with a read pending can itself wait for that read: do not wait.
  void Promise.resolve(it.return?.()).catch(() => {});
  return new InterruptedError(received ?? 'SIGTERM');
}

/**
 * Registers a synchronous hook run at once on the first signal (restore the terminal: show the
 * cursor, re-enable line wrap). Returns a function that unregisters it.
 */
export function atInterrupt(fn: () => void): () => void {
  immediate.add(fn);
  return () => immediate.delete(fn);
}

/**
 * Registers a cleanup run only if the command did not stop by itself within `GRACE_MS` of a
 * signal (e.g. a sink's abort, removing in-progress files). Returns a function that unregisters it.
 */
export function beforeForcedExit(fn: () => Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * Installs the SIGINT/SIGTERM handlers (once per process; later calls only update the command
 * name used in the forced-exit line, e.g. `kappa sink`).
 */
export function installSignalHandlers(command?: string): void {
  if (command) commandName = command;
  if (installed) return;
  installed = true;
  const handler = (sig: StopSignal) => {
    if (!received && deferrals.size > 0 && !deferredSignal) {
      // Stop-with-savepoint: the first signal asks for a savepoint instead of interrupting.
      deferredSignal = sig;
      for (const d of [...deferrals]) d(sig);
      return;
    }
    if (received) {
      // Second signal: the user insists.
      runImmediate();
      process.exit(signalExitCode(sig));
    }
    received = sig;
    runImmediate();
    wakeWaiters(sig);
    setTimeout(() => void forcedExit(sig), GRACE_MS).unref();
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}

function runImmediate(): void {
  for (const fn of immediate) {
    try {
      fn();
    } catch {
      // restoring the terminal must not stop the others
    }
  }
}

async function forcedExit(sig: StopSignal): Promise<void> {
  const timeout = new Promise<void>((r) => setTimeout(r, GRACE_MS).unref());
  await Promise.race([Promise.allSettled([...cleanups].map((fn) => fn())), timeout]);
  process.stderr.write(
    `${commandName}: interrupted by ${sig}; stopped after ${GRACE_MS / 1000} s without finishing its cleanup; nothing was committed\n`,
  );
  process.exit(signalExitCode(sig));
}

/** Test hook: forget a received signal (unit tests run several scenarios in one process). */
export function resetInterruptForTests(): void {
  received = undefined;
  deferredSignal = undefined;
  deferrals.clear();
  waiters.clear();
}

/** Test hook: how many `raceInterrupt` calls are pending (0 once their promises settled). */
export function pendingInterruptWaitersForTests(): number {
  return waiters.size;
}

/** Test hook: act as if `sig` had arrived, without the forced-exit timer. */
export function simulateInterruptForTests(sig: StopSignal): void {
  received = sig;
  runImmediate();
  wakeWaiters(sig);
}
