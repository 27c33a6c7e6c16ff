/**
 * `kappa state-edit diff A B`: what differs between two savepoints: metadata (key groups, sources,
 * per-operator watermarks, state descriptors, operator state), operators only in one of them, and
 * per operator the entries added, removed and changed (by identity: state, key, window start; a
 * change is a different value, window end or timer), with counts and the first few of each.
 * Key groups are not compared per entry (they follow from the key and the key-group count). Both
 * sides' entries of one operator are held in memory at a time.
 */
import { canonicalJson } from '../keygroup.js';
import type { SavepointEntry } from '../savepoint/format.js';
import type { Savepoint } from '../savepoint/read.js';
import { type EntryLine, entryId, entryToLine } from './model.js';

/** Per-operator differences. */
export interface OperatorDiff {
  uid: string;
  /** `both`, or the side that alone has the operator. */
  in: 'both' | 'a' | 'b';
  added: number;
  removed: number;
  changed: number;
  /** Up to `limit` of each. */
  firstAdded: EntryLine[];
  firstRemoved: EntryLine[];
  firstChanged: { a: EntryLine; b: EntryLine }[];
  /** Differences of the operator's metadata (kind, states, watermark, operator state). */
  metadata: string[];
}

/** What `diff` reports (its `--json` output). */
export interface SavepointDiff {
  equal: boolean;
  metadata: string[];
  operators: OperatorDiff[];
}

const same = (x: unknown, y: unknown) => canonicalJson(x) === canonicalJson(y);
const show = (x: unknown) => JSON.stringify(x);

async function entryMap(sp: Savepoint, uid: string): Promise<Map<string, SavepointEntry>> {
  const m = new Map<string, SavepointEntry>();
  for await (const e of sp.entries(uid)) {
    const id = entryId(e);
    // Sessions of a key share no identity problem: their starts differ.
    m.set(m.has(id) ? `${id}\u0000${m.size}` : id, e);
  }
  return m;
}

/**
 * Compares savepoints `a` and `b` (both opened and verified).
 * @param limit entries listed per kind of difference and operator (default 5)
 */
export async function diffSavepoints(a: Savepoint, b: Savepoint, limit = 5): Promise<SavepointDiff> {
  const ma = a.metadata;
  const mb = b.metadata;
  const metadata: string[] = [];
  if (ma.maxKeyGroups !== mb.maxKeyGroups)
    metadata.push(`maxKeyGroups: ${ma.maxKeyGroups} -> ${mb.maxKeyGroups}`);
  if (ma.pipeline !== mb.pipeline) metadata.push(`pipeline: ${ma.pipeline} -> ${mb.pipeline}`);
  const srcA = new Map(ma.sources.map((s) => [s.uid, s]));
  const srcB = new Map(mb.sources.map((s) => [s.uid, s]));
  for (const [uid, s] of srcA) {
    const t = srcB.get(uid);
    if (!t) metadata.push(`source ${uid}: only in A`);
    else {
      if (!same(s.positions, t.positions))
        metadata.push(`source ${uid} positions: ${show(s.positions)} -> ${show(t.positions)}`);
      if (s.watermark !== t.watermark)
        metadata.push(`source ${uid} watermark: ${s.watermark} -> ${t.watermark}`);
    }
  }
  for (const uid of srcB.keys()) if (!srcA.has(uid)) metadata.push(`source ${uid}: only in B`);

  const operators: OperatorDiff[] = [];
  const uids = [...new Set([...ma.operators.map((o) => o.uid), ...mb.operators.map((o) => o.uid)])];
  for (const uid of uids) {
    const oa = a.operator(uid);
    const ob = b.operator(uid);
    const d: OperatorDiff = {
      uid,
      in: oa && ob ? 'both' : oa ? 'a' : 'b',
      added: 0,
      removed: 0,
      changed: 0,
      firstAdded: [],
      firstRemoved: [],
      firstChanged: [],
      metadata: [],
    };
    if (oa && ob) {
      if (oa.kind !== ob.kind) d.metadata.push(`kind: ${oa.kind} -> ${ob.kind}`);
      if (!same(oa.states, ob.states)) d.metadata.push(`states: ${show(oa.states)} -> ${show(ob.states)}`);
      if (oa.watermark !== ob.watermark) d.metadata.push(`watermark: ${oa.watermark} -> ${ob.watermark}`);
      if (!same(oa.operatorState, ob.operatorState))
        d.metadata.push(`operator state: ${show(oa.operatorState)} -> ${show(ob.operatorState)}`);
    }
    const ea = oa ? await entryMap(a, uid) : new Map<string, SavepointEntry>();
    const eb = ob ? await entryMap(b, uid) : new Map<string, SavepointEntry>();
    for (const [id, x] of ea) {
      const y = eb.get(id);
      if (!y) {
        d.removed++;
        if (d.firstRemoved.length < limit) d.firstRemoved.push(entryToLine(x, uid));
      } else if (x.windowEnd !== y.windowEnd || x.timer !== y.timer || !same(x.value, y.value)) {
        d.changed++;
        if (d.firstChanged.length < limit)
          d.firstChanged.push({ a: entryToLine(x, uid), b: entryToLine(y, uid) });
      }
    }
    for (const [id, y] of eb)
      if (!ea.has(id)) {
        d.added++;
        if (d.firstAdded.length < limit) d.firstAdded.push(entryToLine(y, uid));
      }
    if (d.in !== 'both' || d.added || d.removed || d.changed || d.metadata.length > 0) operators.push(d);
  }
  return { equal: metadata.length === 0 && operators.length === 0, metadata, operators };
}

/** The diff as text, like a unified summary: `-` removed, `+` added, `~` changed. */
export function formatDiff(d: SavepointDiff): string {
  if (d.equal) return '';
  const l: string[] = [];
  for (const m of d.metadata) l.push(`metadata: ${m}`);
  for (const o of d.operators) {
    if (o.in !== 'both')
      l.push(
        `operator ${o.uid}: only in ${o.in.toUpperCase()} (${o.in === 'a' ? o.removed : o.added} entries)`,
      );
    else l.push(`operator ${o.uid}: ${o.added} added, ${o.removed} removed, ${o.changed} changed`);
    for (const m of o.metadata) l.push(`  metadata ${m}`);
    if (o.in !== 'both') continue;
    for (const e of o.firstRemoved) l.push(`  - ${JSON.stringify(e)}`);
    for (const e of o.firstAdded) l.push(`  + ${JSON.stringify(e)}`);
    for (const c of o.firstChanged) l.push(`  ~ ${JSON.stringify(c.a)}\n    ${JSON.stringify(c.b)}`);
  }
  return `${l.join('\n')}\n`;
}
