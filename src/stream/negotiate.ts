/**
 * Which encoding a stage writes its stream in (man/kappa-stream.5, "ENCODING NEGOTIATION"):
 * `--stream-format` if given, else `KAPPA_STREAM_FORMAT`, else `auto`: version 2 (Arrow IPC) only
 * when the process reading stdout is a kappa stage that reads a stream, else version 1 (NDJSON).
 *
 * Detection (Linux): stdout must be a pipe (`/proc/self/fd/1` -> `pipe:[INODE]`). Among the
 * processes of our process group (a shell pipeline's stages share one), the one holding the same
 * pipe open for reading (`/proc/PID/fdinfo/FD` flags with O_ACCMODE = O_RDONLY) is the reader. It is
 * a kappa stage when its command line (`/proc/PID/cmdline`) has an argument whose file name is
 * `kappa` (bin/kappa, an npm bin link) or that ends in `dist/src/cli.js`, followed by a command that
 * reads a stream and works on batches: transform, window, sink, join, run (see STREAM_READERS). When the reader is still a shell that has not
 * exec'd node yet, detection looks again for up to 50 ms. Anything else (a file, a terminal, jq,
 * another OS, an unreadable /proc) gets NDJSON.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { UsageError } from '../errors.js';

export type StreamFormat = 'auto' | 'ndjson' | 'arrow';

const FORMATS: readonly StreamFormat[] = ['auto', 'ndjson', 'arrow'];

/**
 * Commands that get version 2 under `auto`: they read a stream and gain from batches. History of
 * `transform`: it was left out while ingest of NDJSON to Arrow cost more than ingest to NDJSON
 * (1M flights, `ingest | transform --filter … --select …` 2.5 s with NDJSON, 3.3 s with Arrow).
 * With the NDJSON byte scanner (formats/ndjson-scan.ts) bench scenario 1b (3M flights from stdin,
 * `--filter 'r.delay > 60' --select date,origin,delay`, CPU s, medians of 7 A/B runs on 2 shared
 * cores) costs ingest 3.5 + transform 1.75 with Arrow against 3.85 + 3.85 with NDJSON: the busiest
 * stage is lower and the whole pipeline uses 30 % less CPU; `--map` on 1M: transform 2.2 vs 2.75.
 * `ingest | window … | sink -` on 3M took 15.4 s with NDJSON and 9.7 s with Arrow.
 */
const STREAM_READERS = new Set(['transform', 'window', 'sink', 'join', 'run']);

let requested: StreamFormat | undefined;

/** Parses a `--stream-format` / `KAPPA_STREAM_FORMAT` value. @throws UsageError for another value */
export function parseStreamFormat(v: string, where = '--stream-format'): StreamFormat {
  if ((FORMATS as readonly string[]).includes(v)) return v as StreamFormat;
  throw new UsageError(`${where}: expected auto, ndjson or arrow, got '${v}'`);
}

/** Records `--stream-format` for this process (set while the command line is parsed). */
export function setStreamFormat(f: StreamFormat | undefined): void {
  requested = f;
}

/** The requested format: the flag, else KAPPA_STREAM_FORMAT, else auto. @throws UsageError */
export function requestedStreamFormat(): StreamFormat {
  if (requested) return requested;
  const env = process.env.KAPPA_STREAM_FORMAT;
  return env ? parseStreamFormat(env, 'KAPPA_STREAM_FORMAT') : 'auto';
}

/**
 * The encoding to write on stdout: 'arrow' or 'ndjson' (see the module doc).
 * @param toStdout false for another destination (a test's stream): auto means NDJSON there
 */
export function resolveStreamFormat(toStdout = true): 'ndjson' | 'arrow' {
  const f = requestedStreamFormat();
  if (f !== 'auto') return f;
  return toStdout && stdoutReaderIsKappa() ? 'arrow' : 'ndjson';
}

/** True when the process reading our stdout pipe is a kappa stage reading a stream (Linux /proc). */
export function stdoutReaderIsKappa(): boolean {
  const argv = stdoutKappaReader();
  return argv !== undefined && STREAM_READERS.has(argv[0]);
}

let readerMemo: { argv: readonly string[] | undefined } | undefined;

/**
 * The command line of the kappa stage reading our stdout pipe, from its command on
 * (`['window', '--key', 'origin', …]`, from `/proc/PID/cmdline`), found as the module doc says
 * (one scan of /proc, waiting up to 50 ms for a reader that still runs a shell); undefined when
 * stdout is not a pipe, the reader is not found or is not kappa. The answer is kept for the life of
 * the process (fd 1 does not change), so ingest can decide its column projection before it opens
 * its input and the stream writer reuses the same scan to pick the encoding.
 */
export function stdoutKappaReader(): readonly string[] | undefined {
  readerMemo ??= { argv: scanStdoutReader() };
  return readerMemo.argv;
}

function scanStdoutReader(): string[] | undefined {
  let link: string;
  try {
    link = readlinkSync('/proc/self/fd/1');
  } catch {
    return undefined;
  }
  if (!/^pipe:\[\d+\]$/.test(link)) return undefined;
  const deadline = Date.now() + 50;
  for (;;) {
    const r = pipeReader(link);
    if (r === undefined) return undefined;
    const argv = kappaArgvOf(r);
    if (argv !== 'not yet') return argv;
    if (Date.now() >= deadline) return undefined;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}

function pgrpOf(pid: string): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2];
  } catch {
    return undefined;
  }
}

/** The pid of the process in our process group that has `link` (pipe:[N]) open for reading. */
function pipeReader(link: string): string | undefined {
  const self = String(process.pid);
  const group = pgrpOf('self');
  if (group === undefined) return undefined;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && d !== self);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    if (pgrpOf(pid) !== group) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== link) continue;
        const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
        const flags = Number.parseInt(/flags:\s*([0-7]+)/.exec(info)?.[1] ?? '1', 8);
        if ((flags & 3) === 0) return pid;
      } catch {}
    }
  }
  return undefined;
}

/**
 * The kappa command (`window`, `sink`, …) process `pid` runs, undefined when it does not run kappa,
 * or 'not yet' while it still runs a shell or `env` before exec'ing node.
 */
export function kappaCommandOf(pid: string): string | undefined | 'not yet' {
  const argv = kappaArgvOf(pid);
  return argv === 'not yet' || argv === undefined ? argv : (argv[0] ?? '');
}

/**
 * The arguments of the kappa program process `pid` runs, from its command on (`['window', '--key',
 * 'k']`; the command is '' when none follows), undefined when it does not run kappa, or 'not yet'
 * while it still runs a shell or `env` before exec'ing node.
 */
export function kappaArgvOf(pid: string): string[] | undefined | 'not yet' {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
  // cmdline ends with a NUL: the last element is empty.
  if (argv[argv.length - 1] === '') argv.pop();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === 'kappa' || a.endsWith('/kappa') || a.endsWith('dist/src/cli.js'))
      return i + 1 < argv.length ? argv.slice(i + 1) : [''];
  }
  const exe = (argv[0] ?? '').split('/').pop() ?? '';
  return /^(sh|bash|dash|zsh|ksh|env)$/.test(exe) ? 'not yet' : undefined;
}

/**
 * Who reads our stdout: `kappa` (a kappa stage of any command, found as in the module doc),
 * `other` (stdout is a file or terminal, or the pipe's reader is positively another program) or
 * `unknown` (no /proc, a socket, the reader not found). The checkpoint runtime uses it to decide
 * whether this stage is the last of a pipeline: only an `other` answer makes it so.
 */
export function stdoutReader(): 'kappa' | 'other' | 'unknown' {
  let link: string;
  try {
    link = readlinkSync('/proc/self/fd/1');
  } catch {
    return 'unknown';
  }
  if (!/^pipe:\[\d+\]$/.test(link)) return link.startsWith('socket:') ? 'unknown' : 'other';
  const deadline = Date.now() + 50;
  for (;;) {
    const r = pipeReader(link);
    if (r === undefined) return 'unknown';
    const c = kappaCommandOf(r);
    if (c !== 'not yet') return c === undefined ? 'other' : 'kappa';
    if (Date.now() >= deadline) return 'unknown';
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}

/**
 * Whether some process of our process group still holds our stdout pipe open for reading: false
 * once every downstream stage exited; undefined when stdout is not a pipe or /proc is unreadable.
 */
export function stdoutPipeHasReader(): boolean | undefined {
  let link: string;
  try {
    link = readlinkSync('/proc/self/fd/1');
  } catch {
    return undefined;
  }
  if (!/^pipe:\[\d+\]$/.test(link)) return undefined;
  return pipeReader(link) !== undefined;
}
