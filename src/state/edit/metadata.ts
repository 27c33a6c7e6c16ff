/**
 * Edits of a savepoint's metadata (`kappa state-edit drop-operator | rename-operator |
 * set-positions | set-watermark`): pure functions from the source's metadata to a SavepointEdit.
 */
import { UsageError } from '../../errors.js';
import type { Json, SavepointMetadata, SourceSnapshot } from '../savepoint/format.js';
import { UID_PATTERN } from '../savepoint/format.js';
import type { OperatorEdit, SavepointEdit } from './rewrite.js';

const uids = (m: SavepointMetadata) => m.operators.map((o) => o.uid).join(', ') || 'none';

function needOperator(m: SavepointMetadata, uid: string): void {
  if (!m.operators.some((o) => o.uid === uid))
    throw new UsageError(`the savepoint has no operator '${uid}' (it has: ${uids(m)})`);
}

/**
 * The copy without operator `uid`.
 * @throws UsageError when there is no such operator
 */
export function dropOperator(m: SavepointMetadata, uid: string): SavepointEdit {
  needOperator(m, uid);
  return { operators: m.operators.filter((o) => o.uid !== uid).map((o) => ({ uid: o.uid })) };
}

/**
 * The copy with operator `from` renamed to `to` (its files move to `to/`).
 * @throws UsageError when `from` does not exist, `to` exists or is not a usable uid
 */
export function renameOperator(m: SavepointMetadata, from: string, to: string): SavepointEdit {
  needOperator(m, from);
  if (!UID_PATTERN.test(to))
    throw new UsageError(
      `'${to}' is not a usable uid: letters, digits, '.', '_' and '-', starting with a letter or digit`,
    );
  if (m.operators.some((o) => o.uid === to))
    throw new UsageError(`the savepoint already has an operator '${to}'`);
  return {
    operators: m.operators.map((o): OperatorEdit => (o.uid === from ? { uid: to, from } : { uid: o.uid })),
  };
}

/**
 * Parses `set-positions` POSITIONS: Kafka `p:offset,…` (partition to next offset, offsets kept as
 * decimal strings: they are int64) gives `{"<p>":"<offset>",…}`; an ISO 8601 time gives
 * `{"timestamp": <epoch ms>}` (start at the first record at or after it); a JSON object or list
 * (file positions as the source records them) is taken as it is.
 * @throws UsageError for anything else
 */
export function parsePositions(text: string): Json {
  const t = text.trim();
  if (/^\d+:\d+(,\d+:\d+)*$/.test(t)) {
    const o: Record<string, Json> = {};
    for (const p of t.split(',')) {
      const [part, off] = p.split(':');
      if (part in o) throw new UsageError(`set-positions: partition ${part} given twice in '${text}'`);
      o[String(Number(part))] = off.replace(/^0+(?=\d)/, '');
    }
    return o;
  }
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(t) as Json;
    } catch (e) {
      throw new UsageError(`set-positions: '${text}' is not JSON: ${(e as Error).message}`);
    }
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(t) && !Number.isNaN(Date.parse(t))) return { timestamp: Date.parse(t) };
  throw new UsageError(
    `set-positions: '${text}' is not a position list`,
    "give Kafka offsets as 'PARTITION:OFFSET,…' (e.g. 0:1200,1:980), an ISO time, or file positions as JSON",
  );
}

/** True for a partition-to-offset map as `parsePositions` makes of `p:offset,…`. */
function isOffsetMap(v: Json): v is Record<string, string> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.keys(v).length > 0 &&
    Object.entries(v).every(([p, o]) => /^\d+$/.test(p) && typeof o === 'string' && /^\d+$/.test(o))
  );
}

/**
 * The copy with source `uid`'s positions replaced. A Kafka source's position is
 * `{kind: 'kafka', topic, next: {"<p>": "<offset>"}}` (src/connectors/source.ts `SourcePosition`):
 * a partition map given for it replaces `next` and keeps the rest, so the source can still read it.
 * @throws UsageError when there is no such source
 */
export function setPositions(m: SavepointMetadata, uid: string, positions: Json): SavepointEdit {
  if (!m.sources.some((s) => s.uid === uid))
    throw new UsageError(
      `the savepoint has no source '${uid}' (it has: ${m.sources.map((s) => s.uid).join(', ') || 'none'})`,
    );
  const merged = (old: Json): Json => {
    if (
      isOffsetMap(positions) &&
      typeof old === 'object' &&
      old !== null &&
      !Array.isArray(old) &&
      old.kind === 'kafka'
    )
      return { ...old, next: positions };
    return positions;
  };
  return {
    sources: m.sources.map(
      (s): SourceSnapshot => (s.uid === uid ? { ...s, positions: merged(s.positions) } : s),
    ),
  };
}

/**
 * Parses a watermark: an ISO 8601 time (UTC unless it names an offset) or epoch ms.
 * @throws UsageError otherwise
 */
export function parseTime(text: string, flag: string): number {
  const t = text.trim();
  if (/^-?\d+$/.test(t)) return Number(t);
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(t) || !/T/.test(t) ? t : `${t}Z`;
  const v = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(iso) ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(v)) throw new UsageError(`${flag}: '${text}' is not an ISO 8601 time or epoch ms`);
  return v;
}

/**
 * The copy with watermark `wm` (epoch ms) on every operator (or those in `only`) and every source:
 * the operator's `watermark`, and in a window operator's state its input watermark and its output
 * watermark (`wm` minus the state's allowed lateness).
 * @throws UsageError for an operator in `only` that does not exist
 */
export function setWatermark(m: SavepointMetadata, wm: number, only?: string[]): SavepointEdit {
  for (const u of only ?? []) needOperator(m, u);
  const pick = (uid: string) => only === undefined || only.includes(uid);
  return {
    sources: only === undefined ? m.sources.map((s) => ({ ...s, watermark: wm })) : m.sources,
    operators: m.operators.map((o): OperatorEdit => {
      if (!pick(o.uid)) return { uid: o.uid };
      let operatorState = o.operatorState;
      if (operatorState !== null && typeof operatorState === 'object' && !Array.isArray(operatorState)) {
        const st: Record<string, Json> = { ...operatorState };
        if ('watermark' in st) st.watermark = wm;
        if ('outputWatermark' in st) {
          const l = (o.states[0]?.schema as { allowedLateness?: unknown } | null)?.allowedLateness;
          st.outputWatermark = wm - (typeof l === 'number' ? l : 0);
        }
        operatorState = st;
      }
      return { uid: o.uid, watermark: wm, operatorState };
    }),
  };
}
