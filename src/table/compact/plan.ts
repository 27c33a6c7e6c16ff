/**
 * Compaction planning: which live files of which partitions are merged into which output files.
 *
 * Per partition (the directory of the files, i.e. one set of partition values), as delta-rs's
 * optimize plans (crates/core/src/operations/optimize.rs, the first-fit-decreasing version): files
 * at or above the target size are left alone; the small ones are sorted largest first and each is
 * put into the first bin it fits in (a bin holds at most `target` input bytes), else into a new bin;
 * bins with a single file are dropped (rewriting one file gains nothing). A partition with fewer
 * than `minFiles` small files is skipped. `--keep-latest-by` needs every row of a partition in one
 * place, so its plan is one bin per partition holding every live file (one file is enough there:
 * the rewrite drops older rows of a key).
 */
import type { DeltaAdd } from '../delta.js';
import { decodeDeltaPath } from '../delta.js';

/** Input files merged into one output file. */
export interface Bin {
  files: DeltaAdd[];
  /** Sum of the input sizes (bytes). */
  bytes: number;
}

/** The plan of one partition. */
export interface PartitionPlan {
  /** Directory of the partition relative to the table root ('' for an unpartitioned table). */
  dir: string;
  partitionValues: Record<string, string | null>;
  bins: Bin[];
}

/** The partition directory of an `add` (its decoded path without the file name). */
export function partitionDir(add: DeltaAdd): string {
  const rel = decodeDeltaPath(add.path);
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Live files grouped by partition directory, in directory order. */
export function byPartition(files: Iterable<DeltaAdd>): Map<string, DeltaAdd[]> {
  const out = new Map<string, DeltaAdd[]>();
  for (const f of files) {
    const d = partitionDir(f);
    const l = out.get(d);
    if (l) l.push(f);
    else out.set(d, [f]);
  }
  return new Map([...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

/**
 * Bins of one partition's files (see the module comment).
 * @param target bytes: files of this size or more are not rewritten, a bin holds at most this much
 * @param minFiles a partition with fewer small files than this gets no bins
 */
export function planBins(files: DeltaAdd[], target: number, minFiles: number): Bin[] {
  const small = files.filter((f) => f.size < target).sort((a, b) => b.size - a.size || cmp(a.path, b.path));
  if (small.length < Math.max(2, minFiles)) return [];
  const bins: Bin[] = [];
  for (const f of small) {
    const bin = bins.find((b) => b.bytes + f.size <= target);
    if (bin) {
      bin.files.push(f);
      bin.bytes += f.size;
    } else bins.push({ files: [f], bytes: f.size });
  }
  return bins.filter((b) => b.files.length > 1);
}

/** One bin of every live file of a partition (for `--keep-latest-by`); none for an empty partition. */
export function planWholePartition(files: DeltaAdd[]): Bin[] {
  if (files.length === 0) return [];
  return [
    { files: [...files].sort((a, b) => cmp(a.path, b.path)), bytes: files.reduce((n, f) => n + f.size, 0) },
  ];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
