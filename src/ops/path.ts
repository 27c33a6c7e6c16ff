/**
 * Dotted field paths (`properties.time`, `a.b.c`) compiled once into getters. A key that itself
 * contains dots (`{"a.b": 1}`) is matched first, so flattened columns keep working.
 */
export type Getter = (o: unknown) => unknown;

/** Compiles a dotted path into a getter that returns undefined when any step is missing. */
export function compilePath(path: string): Getter {
  const parts = path.split('.');
  if (parts.length === 1)
    return (o) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[path] : undefined);
  return (o) => {
    if (o === null || typeof o !== 'object') return undefined;
    const direct = (o as Record<string, unknown>)[path];
    if (direct !== undefined) return direct;
    let cur: unknown = o;
    for (const p of parts) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string, unknown>)[p];
    }
    return cur;
  };
}
