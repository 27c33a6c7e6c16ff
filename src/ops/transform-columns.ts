/**
 * The columnar path of `kappa transform` (issue 14): the longest prefix of the chain made of
 * built-ins (`--select`, `--drop`, `--rename`) and of expressions that read only named fields
 * (`--filter`, `--key`, `--ts` whose `r` appears only as `r.NAME`: expr.ts `fieldsRead`) is applied
 * to a batch's columns. The result is a view over the input columns (renamed, selected, dropped,
 * the rows a filter keeps), with a new key column or new event times where the chain sets them.
 * An expression runs once per row on an object holding only the fields it reads, built from the
 * columns (the other fields stay columnar; `r.delay > 60` never builds a whole row). The steps
 * after the prefix (`--map`, `--flat-map`, other expressions) run on the view's rows.
 *
 * It gives exactly what the row steps of transform.ts give for the batch's records: selected
 * fields a record lacks are null, renames keep the field order (a rename onto an existing name
 * keeps the first position and the later value), a key is `toRecordKey` of the field's value (or
 * of the expression's result), an event time is the number rounded to the millisecond and a row
 * whose time is not a finite number, or whose expression throws, is a bad record with the row
 * step's message; a row left out by a step is not seen by later steps. Chains whose first step has
 * no columnar form, or with a `--dedupe` step, have no batch path (`columnarChain` returns
 * undefined), nor do batches whose records lack fields or carry non-object values (`complete`
 * unset): the operator then runs its row steps.
 *
 * A `--filter` of the simplest shape — comparisons `r.F OP number` (OP one of > >= < <= === !==
 * == !=) joined by `&&` and `||` (`simplePredicate`) — is evaluated on the columns without a row
 * object or a call into the expression's context: a numeric column's doubles are compared
 * directly, any other primitive value (null, a string, a field the value lacks: undefined) by the
 * same JavaScript operator in this realm, which gives what the expression gives (`null > 60` is
 * false, `null < 60` true, `undefined` compares false, `!=` true). A batch where a compared value
 * is an object (which could convert itself) runs the expression per row as before.
 */
import { ArrayColumn, type Column, nullColumn, type RecordBatch, takeRows } from '../stream/batch.js';
import type { FieldType, Schema } from '../stream/protocol.js';
import type { CompiledExpr } from './expr.js';
import { toRecordKey } from './keys.js';
import { BadRecordError, type BadRow } from './operator.js';
import type { TransformStep } from './transform.js';

type ColStep =
  | { kind: 'select'; fields: string[] }
  | { kind: 'drop'; fields: Set<string> }
  | { kind: 'rename'; map: Map<string, string> }
  | { kind: 'key' | 'ts'; field: string; expr: string }
  | {
      kind: 'filter' | 'key' | 'ts';
      fn: CompiledExpr;
      fields: readonly string[];
      expr: string;
      /** A filter's `simplePredicate`, when it has that shape. */
      pred?: SimplePredicate;
    };

/** The comparison operators of a `simplePredicate`. */
export type CmpOp = '>' | '>=' | '<' | '<=' | '===' | '!==' | '==' | '!=';

/** One comparison `r.field OP lit`. */
export interface CmpTerm {
  field: string;
  op: CmpOp;
  lit: number;
}

/** A filter predicate as an OR of ANDs of comparisons (`&&` binds tighter than `||`, as in JS). */
export type SimplePredicate = CmpTerm[][];

/** `r.NAME OP number`: a JSON-style decimal literal (no octal, hex, separators or bare dots). */
const CMP_TERM =
  /^\s*r\.([A-Za-z_$][\w$]*)\s*(===|!==|==|!=|>=|<=|>|<)\s*(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*$/;

/**
 * The predicate of a filter expression made only of comparisons `r.F OP number` joined by `&&`
 * and `||` (no parentheses, no other operators), or undefined for any other expression. The
 * literal's value is `Number()` of its text, which is the value of the same decimal literal in
 * JavaScript (ECMA-262 StringToNumber and NumericLiteral share the decimal grammar; a leading
 * `-` is JavaScript's unary minus, also exact). F must not be a name `Object.prototype` has.
 */
export function simplePredicate(src: string): SimplePredicate | undefined {
  const out: SimplePredicate = [];
  for (const alt of src.split('||')) {
    const and: CmpTerm[] = [];
    for (const t of alt.split('&&')) {
      const m = CMP_TERM.exec(t);
      if (!m || m[1] in Object.prototype) return undefined;
      and.push({ field: m[1], op: m[2] as CmpOp, lit: Number(m[3]) });
    }
    out.push(and);
  }
  return out;
}

/** JavaScript's comparison of any value with a number, as the expression does it. */
function compareValue(v: unknown, op: CmpOp, lit: number): boolean {
  const x = v as number;
  switch (op) {
    case '>':
      return x > lit;
    case '>=':
      return x >= lit;
    case '<':
      return x < lit;
    case '<=':
      return x <= lit;
    case '===':
      return x === lit;
    case '!==':
      return x !== lit;
    case '==':
      // biome-ignore lint/suspicious/noDoubleEquals: the user's expression's own operator
      return x == lit;
    default:
      // biome-ignore lint/suspicious/noDoubleEquals: the user's expression's own operator
      return x != lit;
  }
}

/** The comparison of two doubles per operator (on doubles == is ===). */
const NUM_CMP: Record<CmpOp, (x: number, lit: number) => boolean> = {
  '>': (x, l) => x > l,
  '>=': (x, l) => x >= l,
  '<': (x, l) => x < l,
  '<=': (x, l) => x <= l,
  '===': (x, l) => x === l,
  '!==': (x, l) => x !== l,
  '==': (x, l) => x === l,
  '!=': (x, l) => x !== l,
};

/**
 * One comparison over the rows of a batch (1: true), or undefined when a value is an object.
 * @param col the field's column at this step (null: null values); `present` false: the field is
 *   absent from every row (the expression reads undefined)
 */
function termMask(t: CmpTerm, col: Column | null, present: boolean, n: number): Uint8Array | undefined {
  const out = new Uint8Array(n);
  if (!present || col === null) {
    const r = compareValue(present ? null : undefined, t.op, t.lit) ? 1 : 0;
    return r ? out.fill(1) : out;
  }
  const f = col.typed && (col.type === 'int64' || col.type === 'float64') ? col.float64() : undefined;
  const { op, lit } = t;
  if (f) {
    const cmp = NUM_CMP[op];
    for (let i = 0; i < n; i++) {
      const x = f[i];
      // NaN: null in the column (or a NaN value): the operator on the value itself.
      if (!Number.isNaN(x)) out[i] = cmp(x, lit) ? 1 : 0;
      else out[i] = compareValue(col.get(i), op, lit) ? 1 : 0;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = col.get(i);
    if (v !== null && (typeof v === 'object' || typeof v === 'function')) return undefined;
    out[i] = compareValue(v, op, lit) ? 1 : 0;
  }
  return out;
}

/** The rows a simple predicate keeps (1), or undefined when a compared value is an object. */
function predicateMask(
  pred: SimplePredicate,
  cols: ReadonlyMap<string, Column | null>,
  n: number,
): Uint8Array | undefined {
  let any: Uint8Array | undefined;
  for (const and of pred) {
    let all: Uint8Array | undefined;
    for (const t of and) {
      const m = termMask(t, cols.get(t.field) ?? null, cols.has(t.field), n);
      if (!m) return undefined;
      if (!all) all = m;
      else for (let i = 0; i < n; i++) all[i] &= m[i];
    }
    const a = all as Uint8Array;
    if (!any) any = a;
    else for (let i = 0; i < n; i++) any[i] |= a[i];
  }
  return any;
}

const FIELD_REF = /^\s*r\.([A-Za-z_$][\w$]*)\s*$/;

/** A plain top-level field name that an object's prototype does not also answer to. */
function plain(name: string): boolean {
  return !name.includes('.') && !(name in Object.prototype);
}

/** A chain applied column-wise. */
export interface ColumnarChain {
  /** Steps `0 .. prefix - 1` run on columns; the steps from `prefix` on run on the result's rows. */
  readonly prefix: number;
  /** True when the prefix holds the chain's last `--ts` step (its times feed `onTs`). */
  readonly lastTs: boolean;
  /**
   * Applies the prefix to a complete batch.
   * @param schema the operator's output schema (types of null columns for absent selected fields)
   * @param bad reports a row whose new event time is invalid or whose expression threw (left out)
   * @param onTs called with each new event time kept (the operator's generated watermark)
   * @returns the result and, when rows were left out, the input row of each result row
   */
  apply(
    b: RecordBatch,
    schema: Schema | undefined,
    bad: BadRow,
    onTs: (ts: number) => void,
  ): { batch: RecordBatch; rows: Int32Array | undefined };
}

/**
 * The columnar form of `steps`, or undefined when the first step has none or a `--dedupe` step
 * follows (see the module comment).
 * @param exprs the compiled (guarded) expression of each expression step, by step index
 */
export function columnarChain(
  steps: readonly TransformStep[],
  exprs: readonly (CompiledExpr | undefined)[] = [],
): ColumnarChain | undefined {
  const plan: ColStep[] = [];
  for (const [si, s] of steps.entries()) {
    const st = colStep(s, exprs[si]);
    if (!st) break;
    plan.push(st);
  }
  if (plan.length === 0 || steps.some((s) => s.kind === 'dedupe')) return undefined;
  const lastTsAt = steps.map((x) => x.kind).lastIndexOf('ts');
  const lastTs = lastTsAt < plan.length;
  return {
    prefix: plan.length,
    lastTs,
    apply: (b, schema, bad, onTs) => applyPlan(plan, b, schema, bad, onTs, lastTs ? lastTsAt : -1),
  };
}

/** The columnar form of one step, or undefined. */
function colStep(s: TransformStep, fn: CompiledExpr | undefined): ColStep | undefined {
  switch (s.kind) {
    case 'select':
      return s.fields.every(plain) ? { kind: 'select', fields: [...new Set(s.fields)] } : undefined;
    case 'drop':
      return { kind: 'drop', fields: new Set(s.fields) };
    case 'rename':
      return { kind: 'rename', map: new Map(s.pairs) };
    case 'key':
    case 'ts':
    case 'filter': {
      const m = s.kind === 'filter' ? null : FIELD_REF.exec(s.expr);
      if (m && s.kind !== 'filter' && plain(m[1])) return { kind: s.kind, field: m[1], expr: s.expr };
      if (fn?.fields === undefined) return undefined;
      const pred = s.kind === 'filter' ? simplePredicate(s.expr) : undefined;
      return { kind: s.kind, fn, fields: fn.fields, expr: s.expr, pred };
    }
    default:
      return undefined;
  }
}

function applyPlan(
  plan: readonly ColStep[],
  b: RecordBatch,
  schema: Schema | undefined,
  bad: BadRow,
  onTs: (ts: number) => void,
  lastTsAt: number,
): { batch: RecordBatch; rows: Int32Array | undefined } {
  const n = b.length;
  // The value's fields at this point of the chain: name -> input column (null: null values).
  let cols = new Map<string, Column | null>(b.fields.map((f) => [f, b.column(f) ?? null]));
  let key = b.key;
  let ts = b.ts;
  let excluded: Uint8Array | undefined;
  const exclude = (i: number, why: string) => {
    excluded ??= new Uint8Array(n);
    excluded[i] = 1;
    if (why) bad(i, why);
  };
  /** Row i's value with only `fields` (those the value has at this step), for an expression. */
  const partial = (fields: readonly string[]) => {
    const getters = fields.filter((f) => cols.has(f)).map((f) => [f, cols.get(f) ?? null] as const);
    return (i: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      for (const [f, c] of getters) o[f] = c ? c.get(i) : null;
      return o;
    };
  };
  for (const [si, step] of plan.entries()) {
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
      case 'filter': {
        const mask = step.pred ? predicateMask(step.pred, cols, n) : undefined;
        if (mask) {
          for (let i = 0; i < n; i++) if (!mask[i] && !excluded?.[i]) exclude(i, '');
          break;
        }
        const row = partial(step.fields);
        const fn = step.fn;
        for (let i = 0; i < n; i++) {
          if (excluded?.[i]) continue;
          const keep = evalRow(fn, row(i), key, ts[i], i, exclude);
          if (keep === BAD) continue;
          if (!keep) exclude(i, '');
        }
        break;
      }
      case 'key':
        if ('fn' in step) {
          const row = partial(step.fields);
          const keys = new Array<string | null>(n).fill(null);
          for (let i = 0; i < n; i++) {
            if (excluded?.[i]) continue;
            const k = evalRow(step.fn, row(i), key, ts[i], i, exclude);
            if (k !== BAD) keys[i] = toRecordKey(k);
          }
          key = new ArrayColumn('string', keys);
        } else key = keyColumn(cols.get(step.field) ?? null, n, cols.has(step.field));
        break;
      case 'ts': {
        const row = 'fn' in step ? partial(step.fields) : undefined;
        const col = 'fn' in step ? null : (cols.get(step.field) ?? null);
        const present = 'fn' in step ? false : cols.has(step.field);
        const f = col?.float64();
        const out = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          if (excluded?.[i]) continue;
          let v: unknown;
          let t: unknown;
          if (row && 'fn' in step) {
            t = evalRow(step.fn, row(i), key, ts[i], i, exclude);
            if (t === BAD) continue;
            // A Date made inside the expression's context is not a host Date: test its tag.
            v = Object.prototype.toString.call(t) === '[object Date]' ? Date.prototype.getTime.call(t) : t;
          } else t = v = col ? (f && !Number.isNaN(f[i]) ? f[i] : col.get(i)) : present ? null : undefined;
          if (typeof v !== 'number' || !Number.isFinite(v)) {
            exclude(i, `--ts '${step.expr}': returned ${String(t)}, not epoch milliseconds`);
            continue;
          }
          out[i] = Math.round(v);
          // As the row step: the last --ts step's times feed the watermark, also of rows a later
          // step leaves out.
          if (si === lastTsAt) onTs(out[i]);
        }
        ts = out;
        break;
      }
    }
  }
  const ex = excluded as Uint8Array | undefined;
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
  if (!ex) return { batch: out, rows: undefined };
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (!ex[i]) keep.push(i);
  const rows = Int32Array.from(keep);
  return { batch: takeRows(out, rows), rows };
}

const BAD: unique symbol = Symbol('bad row');

/**
 * Calls a (guarded) expression on row i as the row step does; a BadRecordError leaves the row out
 * with its message (other errors, e.g. UsageError, end the run).
 */
function evalRow(
  fn: CompiledExpr,
  value: Record<string, unknown>,
  key: Column,
  ts: number,
  i: number,
  exclude: (i: number, why: string) => void,
): unknown {
  try {
    return fn(value, (key.get(i) as string | null) ?? null, ts, undefined as never);
  } catch (e) {
    if (!(e instanceof BadRecordError)) throw e;
    exclude(i, e.message);
    return BAD;
  }
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
