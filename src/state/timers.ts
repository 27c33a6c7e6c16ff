/**
 * Event-time timers: at most one pending timer per state key, fired in time order when the
 * watermark reaches it (Flink's `TimerService.registerEventTimeTimer`, with one timer per key).
 *
 * Timers stay on the heap (as Flink's heap timer queue does): one small entry (the state key and a
 * number) per open state entry. The state itself (window aggregates, sketches, distinct sets) is
 * what the keyed state store spills to LevelDB. `has(key)` doubles as "this key may have state",
 * which lets the store skip a LevelDB lookup for keys that certainly have none.
 */
export class TimerQueue {
  private readonly byKey = new Map<string, number>();
  private readonly byTime = new Map<number, Set<string>>();
  /** The distinct times in `byTime` (lazy: a time may be stale after deletes). */
  private readonly heap = new MinHeap();

  /** Number of pending timers. */
  get size(): number {
    return this.byKey.size;
  }

  /** True when `key` has a pending timer. */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** The pending time of `key` (ms), or undefined. */
  get(key: string): number | undefined {
    return this.byKey.get(key);
  }

  /** Sets (or moves) the timer of `key` to `time` (epoch ms). */
  set(key: string, time: number): void {
    const old = this.byKey.get(key);
    if (old === time) return;
    if (old !== undefined) this.byTime.get(old)?.delete(key);
    this.byKey.set(key, time);
    let s = this.byTime.get(time);
    if (!s) {
      s = new Set();
      this.byTime.set(time, s);
      this.heap.push(time);
    }
    s.add(key);
  }

  /** Removes the timer of `key`, if any. */
  delete(key: string): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    this.byKey.delete(key);
    this.byTime.get(old)?.delete(key);
  }

  /**
   * Removes and returns the keys whose timer is <= `time`, oldest first (keys of one time in
   * registration order). Returns an empty array when none is due.
   */
  popDue(time: number): string[] {
    const due: string[] = [];
    while (this.heap.size > 0 && this.heap.peek() <= time) {
      const t = this.heap.pop();
      const s = this.byTime.get(t);
      if (!s) continue;
      this.byTime.delete(t);
      for (const k of s) {
        due.push(k);
        this.byKey.delete(k);
      }
    }
    return due;
  }

  /** The earliest pending time, or undefined. */
  peek(): number | undefined {
    while (this.heap.size > 0) {
      const t = this.heap.peek();
      const s = this.byTime.get(t);
      if (s && s.size > 0) return t;
      this.heap.pop();
      this.byTime.delete(t);
    }
    return undefined;
  }
}

/** A binary min-heap of numbers (e.g. distinct window ends). */
export class MinHeap {
  private readonly h: number[] = [];

  get size(): number {
    return this.h.length;
  }

  /** The smallest element, or +Infinity when empty. */
  peek(): number {
    return this.h.length > 0 ? this.h[0] : Number.POSITIVE_INFINITY;
  }

  push(t: number): void {
    const h = this.h;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= t) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = t;
  }

  /** Removes and returns the smallest element (the heap must not be empty). */
  pop(): number {
    const h = this.h;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && h[r] < h[l] ? r : l;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  clear(): void {
    this.h.length = 0;
  }
}
