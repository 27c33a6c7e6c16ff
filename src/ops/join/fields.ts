/**
 * What every join mode shares: the join key (`--on FIELD[=RIGHT_FIELD][,…]`), the output value
 * (left and right fields merged flat, colliding right names suffixed) and null padding for outer
 * rows. Pure: no I/O, no flags.
 */
import { UsageError } from '../../errors.js';
import { canonicalJson } from '../../state/keygroup.js';
import type { Schema } from '../../stream/protocol.js';
import { compilePath, type Getter } from '../path.js';

/** Join type: which unmatched rows are emitted, null-padded (SQL's INNER / LEFT / RIGHT / FULL OUTER). */
export type JoinType = 'inner' | 'left' | 'right' | 'full';

/** The join key: one field path per side for each `--on` item. */
export interface JoinKeySpec {
  left: string[];
  right: string[];
}

/** Parses `--on a=b,c` into `{left: [a, c], right: [b, c]}`. Throws UsageError on an empty item. */
export function parseOn(text: string): JoinKeySpec {
  const left: string[] = [];
  const right: string[] = [];
  for (const item of text.split(',')) {
    const [l, r, extra] = item.split('=').map((s) => s.trim());
    if (!l || r === '' || extra !== undefined)
      throw new UsageError(`--on: expected FIELD[=RIGHT_FIELD][,…] (e.g. origin=iata), got '${text}'`);
    left.push(l);
    right.push(r ?? l);
  }
  return { left, right };
}

/** Parses `--type`. Throws UsageError for anything but inner, left, right, full. */
export function parseJoinType(s: string): JoinType {
  if (s === 'inner' || s === 'left' || s === 'right' || s === 'full') return s;
  throw new UsageError(`--type: expected inner, left, right or full, got '${s}'`);
}

/** True when unmatched rows of `side` (0 left, 1 right) are emitted null-padded. */
export function padsSide(type: JoinType, side: 0 | 1): boolean {
  return type === 'full' || (side === 0 ? type === 'left' : type === 'right');
}

/**
 * Extracts the join key of a record value as canonical JSON text (RFC 8785, so it hashes to the
 * same key group everywhere): the field's value for one field, a JSON array for several. Returns
 * undefined when a key field is missing or null: as in SQL, such a row never matches.
 */
export function keyExtractor(paths: readonly string[]): (value: unknown) => string | undefined {
  const getters: Getter[] = paths.map((p) => compilePath(p));
  if (getters.length === 1) {
    const g = getters[0];
    return (v) => {
      const k = g(v);
      return k === undefined || k === null ? undefined : canonicalJson(k);
    };
  }
  return (v) => {
    const parts: unknown[] = [];
    for (const g of getters) {
      const k = g(v);
      if (k === undefined || k === null) return undefined;
      parts.push(k);
    }
    return canonicalJson(parts);
  };
}

/** A record value as an object of fields: objects as they are, anything else as `{value: v}`. */
function fieldsOf(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : { value: v };
}

/**
 * Builds output values: the left fields, then the right fields; a right field whose name is a left
 * field (of the left schema, or of the left row when the left header has no schema) is renamed
 * NAME+suffix. Outer rows get null for every field of the other side's schema.
 */
export class Merger {
  private readonly leftNames: ReadonlySet<string> | undefined;
  private readonly leftPad: Record<string, null>;
  /** Without a left schema: the left field names seen so far (pads and renames right-only rows). */
  private readonly leftSeen: Set<string> | undefined;
  private readonly rightPad: Record<string, null>;

  /**
   * @param leftSchema schema of the left input (header), if any
   * @param rightSchema schema of the right input, if any
   * @param suffix appended to colliding right field names (`--suffix`, default `_right`)
   * @param rightFields the right side's field names for null padding, when it has no schema (a
   *   lookup table read from CSV or NDJSON: the union of its rows' fields); default: the schema's
   */
  constructor(
    leftSchema: Schema | undefined,
    private readonly rightSchema: Schema | undefined,
    private readonly suffix: string,
    rightFields?: readonly string[],
  ) {
    this.leftNames = leftSchema ? new Set(Object.keys(leftSchema)) : undefined;
    this.leftSeen = leftSchema ? undefined : new Set();
    this.leftPad = {};
    for (const f of Object.keys(leftSchema ?? {})) this.leftPad[f] = null;
    this.rightPad = {};
    for (const f of rightFields ?? Object.keys(rightSchema ?? {}))
      this.rightPad[this.rightName(f, this.leftPad)] = null;
  }

  private rightName(f: string, left: Record<string, unknown>): string {
    const taken = this.leftNames ? this.leftNames.has(f) : f in left;
    return taken ? f + this.suffix : f;
  }

  private see(l: Record<string, unknown>): void {
    const seen = this.leftSeen;
    if (seen) for (const f in l) if (!seen.has(f)) seen.add(f);
  }

  /** The merged value of a matched pair. */
  merge(left: unknown, right: unknown): Record<string, unknown> {
    const l = fieldsOf(left);
    this.see(l);
    const out: Record<string, unknown> = { ...l };
    const r = fieldsOf(right);
    for (const f in r) out[this.rightName(f, l)] = r[f];
    return out;
  }

  /** The value of an unmatched left row: its fields, the right schema's fields null. */
  padLeft(left: unknown): Record<string, unknown> {
    const l = fieldsOf(left);
    this.see(l);
    const out: Record<string, unknown> = { ...l };
    for (const f in this.rightPad) if (!(f in out)) out[f] = null;
    return out;
  }

  /**
   * The value of an unmatched right row: the left schema's fields null (without a left schema: the
   * left fields seen so far), then its fields, renamed where a left field has the name.
   */
  padRight(right: unknown): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.leftPad };
    if (this.leftSeen) for (const f of this.leftSeen) out[f] = null;
    const r = fieldsOf(right);
    for (const f in r) out[this.rightName(f, out)] = r[f];
    return out;
  }

  /**
   * The output schema: the left schema, then the right one with renamed collisions. Undefined
   * without a left schema (which right names collide is then known per row only).
   */
  schema(left: Schema | undefined): Schema | undefined {
    if (!left) return undefined;
    const out: Schema = { ...(left ?? {}) };
    for (const [f, t] of Object.entries(this.rightSchema ?? {})) out[this.rightName(f, out)] = t;
    return out;
  }
}
