/**
 * `kappa state-edit inspect`: what a savepoint holds: operators (uid, kind, states and schemas,
 * watermark), entries per key group (histogram and skew), sizes, source positions and watermarks,
 * format version.
 */
import { isoUtc } from '../../time/timestamp.js';
import type { Json, StateDescriptor } from '../savepoint/format.js';
import type { Savepoint } from '../savepoint/read.js';

/** One operator in an inspect report. */
export interface OperatorReport {
  uid: string;
  kind: string;
  states: StateDescriptor[];
  watermark: number | null;
  entries: number;
  /** Distinct keys per state. */
  keys: Record<string, number>;
  files: number;
  bytes: number;
  /** Key groups holding entries, and entries per key group (non-empty groups only). */
  keyGroupsUsed: number;
  entriesPerKeyGroup: Record<string, number>;
  /** Largest key group's entries over the mean per key group of all `maxKeyGroups` (1 = even; 0 when empty). */
  skew: number;
  /** The 5 fullest key groups, `[group, entries]`. */
  top: [number, number][];
}

/** What `inspect` reports (its `--json` output). */
export interface InspectReport {
  uri: string;
  format: string;
  formatVersion: number;
  type: string;
  checkpointId: number | null;
  createdAt: string;
  pipeline: string;
  maxKeyGroups: number;
  keyGroupsPerFile: number;
  keyGroupHash: Json;
  sources: { uid: string; positions: Json; watermark: number | null }[];
  operators: OperatorReport[];
  bytes: number;
}

/**
 * Reads every entry of every operator once and builds the report.
 * @throws DataError as Savepoint.entries does
 */
export async function inspectSavepoint(sp: Savepoint): Promise<InspectReport> {
  const m = sp.metadata;
  const operators: OperatorReport[] = [];
  for (const op of m.operators) {
    const per = new Map<number, number>();
    const keys = new Map<string, Set<string>>();
    let n = 0;
    for await (const e of sp.entries(op.uid)) {
      n++;
      per.set(e.keyGroup, (per.get(e.keyGroup) ?? 0) + 1);
      let s = keys.get(e.state);
      if (!s) {
        s = new Set();
        keys.set(e.state, s);
      }
      s.add(e.key);
    }
    const sorted = [...per].sort((a, b) => a[0] - b[0]);
    const max = Math.max(0, ...per.values());
    operators.push({
      uid: op.uid,
      kind: op.kind,
      states: op.states,
      watermark: op.watermark,
      entries: n,
      keys: Object.fromEntries([...keys].map(([k, v]) => [k, v.size])),
      files: op.files.length,
      bytes: op.files.reduce((a, f) => a + f.bytes, 0),
      keyGroupsUsed: per.size,
      entriesPerKeyGroup: Object.fromEntries(sorted.map(([g, c]) => [String(g), c])),
      skew: n === 0 ? 0 : Math.round((max / (n / m.maxKeyGroups)) * 100) / 100,
      top: [...per].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 5),
    });
  }
  return {
    uri: sp.uri,
    format: m.format,
    formatVersion: m.formatVersion,
    type: m.type,
    checkpointId: m.checkpointId,
    createdAt: m.createdAt,
    pipeline: m.pipeline,
    maxKeyGroups: m.maxKeyGroups,
    keyGroupsPerFile: m.keyGroupsPerFile,
    keyGroupHash: m.keyGroupHash as unknown as Json,
    sources: m.sources,
    operators,
    bytes: operators.reduce((a, o) => a + o.bytes, 0),
  };
}

const time = (t: number | null) => (t === null ? 'none' : `${isoUtc(t)} (${t})`);

/** The report as text for a terminal. */
export function formatInspect(r: InspectReport): string {
  const l: string[] = [];
  l.push(`savepoint ${r.uri}`);
  l.push(
    `  format ${r.format} v${r.formatVersion}, ${r.type}, checkpoint ${r.checkpointId ?? 'none'}, created ${r.createdAt}`,
  );
  l.push(
    `  pipeline ${r.pipeline}, ${r.maxKeyGroups} key groups (${r.keyGroupsPerFile} per file), ${r.bytes} bytes`,
  );
  l.push(r.sources.length === 0 ? 'sources: none' : 'sources:');
  for (const s of r.sources)
    l.push(`  ${s.uid}: positions ${JSON.stringify(s.positions)}, watermark ${time(s.watermark)}`);
  l.push(r.operators.length === 0 ? 'operators: none' : 'operators:');
  for (const o of r.operators) {
    l.push(
      `  ${o.uid} (${o.kind}): ${o.entries} entries, ${o.files} files, ${o.bytes} bytes, watermark ${time(o.watermark)}`,
    );
    for (const s of o.states)
      l.push(
        `    state ${s.name} (${s.kind}), ${o.keys[s.name] ?? 0} keys, schema ${JSON.stringify(s.schema)}`,
      );
    l.push(
      `    key groups: ${o.keyGroupsUsed} of ${r.maxKeyGroups} hold entries; skew ${o.skew} (fullest / mean); fullest ${o.top.map(([g, n]) => `${g}:${n}`).join(' ') || '-'}`,
    );
  }
  return `${l.join('\n')}\n`;
}
