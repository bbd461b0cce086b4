/** What a replica tells the others it changed, so they drop or reload their copies. */
export type ChangeTopic = 'policies' | 'oidc' | 'tokens' | 'keys';
export const CHANGE_TOPICS: readonly ChangeTopic[] = ['policies', 'oidc', 'tokens', 'keys'];

/** The topics that are configuration: each has a version in config_version (keys change only with Nexus stopped). */
export type ConfigTopic = Exclude<ChangeTopic, 'keys'>;
export const CONFIG_TOPICS: readonly ConfigTopic[] = ['policies', 'oidc', 'tokens'];

/**
 * Called with a topic, or 'all' when notices may have been missed (reconnect).
 * A listener that reloads returns the reload, so the version poll can tell
 * whether it worked (and try again if not).
 */
export type ChangeListener = (topic: ChangeTopic | 'all') => void | Promise<void>;

/** The in-process fan-out: enough alone for one process (SQLite); PostgreSQL feeds it from LISTEN. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells every listener; resolves true when every reload they started worked. Never rejects. */
  async emit(topic: ChangeTopic | 'all'): Promise<boolean> {
    // A listener's failure is its own (it logs it); the others still hear.
    const done = await Promise.allSettled([...this.listeners].map(async (fn) => fn(topic)));
    return done.every((d) => d.status === 'fulfilled');
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** How often each process reads the configuration versions: the most a lost notice can cost. */
export const CONFIG_POLL_MS = 500;

/**
 * The backstop for change notices, which are fire and forget: a crash
 * between commit and NOTIFY, or a reload that failed, would otherwise leave
 * this process on the old configuration until the next notice. Every period
 * one read of config_version; a topic whose version moved since its caches
 * last reloaded is emitted again, and counts as seen only once every reload
 * of it worked. A change that was also noticed is reloaded twice: cheap, and
 * the poll need not know what the notice did.
 */
export class VersionPoll {
  private seen: Map<ConfigTopic, number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly read: () => Promise<Map<ConfigTopic, number>>,
    private readonly feed: ChangeFeed,
    private readonly periodMs = CONFIG_POLL_MS,
  ) {}

  /**
   * Takes the versions now as the baseline (the caller loads its caches after
   * this, so a change after the baseline is heard at the next tick), then polls.
   */
  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    try {
      this.seen = await this.read();
    } catch {
      // Not readable now: the first tick that reads reloads every topic.
      this.seen = new Map();
    }
    this.timer = setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = null));
    }, this.periodMs);
    this.timer.unref();
  }

  /** One poll: re-emits every topic whose version moved. */
  async tick(): Promise<void> {
    let now: Map<ConfigTopic, number>;
    try {
      now = await this.read();
    } catch {
      return; // the database is away; the next tick tries again
    }
    const seen = (this.seen ??= new Map());
    for (const [topic, version] of now) {
      if (seen.get(topic) === version || this.stopped) continue;
      if (await this.feed.emit(topic)) seen.set(topic, version);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
