/**
 * A bounded map that forgets the least recently used entry first. Written
 * here (a Map keeps insertion order, so this is a few lines) because
 * lru-cache is only a transitive dependency of this project, not one it
 * declares, and the hot path needs nothing more than get/set/delete.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('an LRU needs a positive integer size');
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    // Most recently used moves to the end; the first key is the next to go.
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as K);
  }

  /** Every value, least recently used first (without touching their order). */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  /** Drops every entry the predicate picks (all of them without one). */
  clear(which?: (value: V, key: K) => boolean): void {
    if (!which) return this.map.clear();
    for (const [k, v] of this.map) if (which(v, k)) this.map.delete(k);
  }
}
