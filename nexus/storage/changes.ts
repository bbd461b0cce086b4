/** What a replica tells the others it changed, so they drop or reload their copies. */
export type ChangeTopic = 'policies' | 'oidc' | 'tokens' | 'keys';
export const CHANGE_TOPICS: readonly ChangeTopic[] = ['policies', 'oidc', 'tokens', 'keys'];

/** Called with a topic, or 'all' when notices may have been missed (reconnect). */
export type ChangeListener = (topic: ChangeTopic | 'all') => void;

/** The in-process fan-out: enough alone for one process (SQLite); PostgreSQL feeds it from LISTEN. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(topic: ChangeTopic | 'all'): void {
    for (const fn of this.listeners) {
      try {
        fn(topic);
      } catch {
        /* a listener's failure is its own; the others still hear */
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}
