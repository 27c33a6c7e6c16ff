/**
 * The columnar path of `kappa transform` (issue 14): a chain made only of the built-ins `--select`,
 * `--drop`, `--rename`, and `--key` / `--ts` reading one field (`r.NAME`), applied to a batch's
 * columns without building rows. The result is a view over the input columns (renamed, selected,
 * dropped), with a new key column or new event times where the chain sets them.
 *
 * It gives exactly what the row steps of transform.ts give for the batch's records: selected
 * fields a record lacks are null, renames keep the field order (a rename onto an existing name
 * keeps the first position and the later value), a key is `toRecordKey` of the field's value, an
 * event time is the field's number rounded to the millisecond and a row whose field is not a finite
 * number is a bad record with the row step's message. Chains with anything else (filter, map,
 * flat-map, dedupe, other expressions, dotted paths) have no columnar path (`columnarChain` returns
 * undefined), nor do batches whose records lack fields or carry non-object values (`complete`
 * unset): the operator then runs its row steps.
 */
import { ArrayColumn, type Column, nullColumn, type RecordBatch, takeRows } from '../stream/batch.js';
import type { FieldType, Schema } from '../stream/protocol.js';
import { toRecordKey } from './keys.js';
import type { BadRow } from './operator.js';
import type { TransformStep } from './transform.js';

type ColStep =
  | { kind: 'select'; fields: string[] }
  | { kind: 'drop'; fields: Set<string> }
  | { kind: 'rename'; map: Map<string, string> }
  | { kind: 'key' | 'ts'; field: string; expr: string };

const FIELD_REF = /^\s*r\.([A-Za-z_$][\w$]*)\s*$/;

/** A plain top-level field name that an object's prototype does not also answer to. */
function plain(name: string): boolean {
  return !name.includes('.') && !(name in Object.prototype);
}

/** A chain applied column-wise. */
export interface ColumnarChain {
  /**
   * Applies the chain to a complete batch.
   * @param schema the operator's output schema (types of null columns for absent selected fields)
   * @param bad reports a row whose new event time is invalid (left out of the result)
   * @param onTs called with each new event time kept (the operator's generated watermark)
   */
  apply(b: RecordBatch, schema: Schema | undefined, bad: BadRow, onTs: (ts: number) => void): RecordBatch;
}

/** The columnar form of `steps`, or undefined when a step has none (see the module comment). */
export function columnarChain(steps: readonly TransformStep[]): ColumnarChain | undefined {
  const plan: ColStep[] = [];
  for (const s of steps) {
    switch (s.kind) {
      case 'select':
        if (!s.fields.every(plain)) return undefined;
        plan.push({ kind: 'select', fields: [...new Set(s.fields)] });
        break;
      case 'drop':
        plan.push({ kind: 'drop', fields: new Set(s.fields) });
        break;
      case 'rename':
        plan.push({ kind: 'rename', map: new Map(s.pairs) });
        break;
      case 'key':
      case 'ts': {
        const m = FIELD_REF.exec(s.expr);
        if (!m || !plain(m[1])) return undefined;
        plan.push({ kind: s.kind, field: m[1], expr: s.expr });
        break;
      }
      default:
        return undefined;
    }
  }
  return { apply: (b, schema, bad, onTs) => applyPlan(plan, b, schema, bad, onTs) };
}

function applyPlan(
  plan: readonly ColStep[],
  b: RecordBatch,
  schema: Schema | undefined,
  bad: BadRow,
  onTs: (ts: number) => void,
): RecordBatch {
  const n = b.length;
  // The value's fields at this point of the chain: name -> input column (null: null values).
  let cols = new Map<string, Column | null>(b.fields.map((f) => [f, b.column(f) ?? null]));
  let key = b.key;
  let ts = b.ts;
  let excluded: Uint8Array | undefined;
  for (const step of plan) {
    switch (step.kind) {
      case 'select': {
        const next = new Map<string, Column | null>();
        for (const f of step.fields) next.set(f, cols.get(f) ?? null);
        cols = next;
        break;
      }
      case 'drop': {
        const next = new Map<string, Column | null>();
        for (const [f, c] of cols) if (!step.fields.has(f)) next.set(f, c);
        cols = next;
        break;
      }
      case 'rename': {
        const next = new Map<string, Column | null>();
        for (const [f, c] of cols) next.set(step.map.get(f) ?? f, c);
        cols = next;
        break;
      }
      case 'key':
        key = keyColumn(cols.get(step.field) ?? null, n, cols.has(step.field));
        break;
      case 'ts': {
        const col = cols.get(step.field) ?? null;
        const present = cols.has(step.field);
        const f = col?.float64();
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          if (excluded?.[i]) continue;
          const v = col ? (f && !Number.isNaN(f[i]) ? f[i] : col.get(i)) : present ? null : undefined;
          if (typeof v !== 'number' || !Number.isFinite(v)) {
            excluded ??= new Uint8Array(n);
            excluded[i] = 1;
            bad(i, `--ts '${step.expr}': returned ${String(v)}, not epoch milliseconds`);
            continue;
          }
          out[i] = Math.round(v);
        }
        ts = out;
        break;
      }
    }
  }
  for (let i = 0; i < n; i++) if (!excluded?.[i]) onTs(ts[i]);
  const names = [...cols.keys()];
  const typeOf = (f: string): FieldType => schema?.[f] ?? 'json';
  const out: RecordBatch = {
    length: n,
    ts,
    key,
    fields: names,
    complete: true,
    column(name) {
      if (!cols.has(name)) return undefined;
      return cols.get(name) ?? nullColumn(typeOf(name), n);
    },
    value(i) {
      const o: Record<string, unknown> = {};
      for (const [f, c] of cols) o[f] = c ? c.get(i) : null;
      return o;
    },
    prov: b.prov,
    headers: b.headers,
  };
  if (!excluded) return out;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!excluded[i]) keep.push(i);
  return takeRows(out, Int32Array.from(keep));
}

/** Keys from a field's column (toRecordKey of each value; the field absent: null keys). */
function keyColumn(col: Column | null, n: number, present: boolean): Column {
  if (!col || !present) return new ArrayColumn('string', new Array(n).fill(null));
  const d = col.typed && col.type === 'string' ? col.dictionary() : undefined;
  if (d) {
    const keys = new Array<string | null>(n);
    for (let i = 0; i < n; i++) keys[i] = d.codes[i] < 0 ? null : d.values[d.codes[i]];
    return new ArrayColumn('string', keys);
  }
  const keys = new Array<string | null>(n);
  for (let i = 0; i < n; i++) keys[i] = toRecordKey(col.get(i));
  return new ArrayColumn('string', keys);
}
