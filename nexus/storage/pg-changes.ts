import pg from 'pg';
import { CHANGE_TOPICS, ChangeFeed, type ChangeListener, type ChangeTopic } from './changes.js';

export const CHANNEL = 'nexus_changes';
const TOPICS: ReadonlySet<string> = new Set(CHANGE_TOPICS);

/**
 * LISTEN on a dedicated connection (a pooled one would be handed to queries
 * and lose its LISTEN). When that connection drops it reconnects with backoff
 * and then reports 'all': notices sent while it was away are lost, so every
 * cache reloads.
 */
export class PgChangeFeed extends ChangeFeed {
  private client: pg.Client | null = null;
  private closed = false;
  private connecting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryMs = 100;
  private gap = false;

  constructor(private readonly url: string) {
    super();
  }

  override subscribe(fn: ChangeListener): () => void {
    const off = super.subscribe(fn);
    if (!this.client && !this.connecting && !this.timer && !this.closed) this.connecting = this.connect();
    return off;
  }

  /** Resolves once the first LISTEN attempt is over (it keeps retrying in the background). */
  async ready(): Promise<void> {
    await this.connecting;
  }

  /** True while a LISTEN is in place. */
  listening(): boolean {
    return this.client !== null;
  }

  private discard(client: pg.Client): void {
    client.removeAllListeners();
    client.on('error', () => {});
    void client.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000, keepAlive: true });
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      this.discard(client);
      this.gap = true;
      this.schedule();
    };
    client.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload && TOPICS.has(n.payload)) void this.emit(n.payload as ChangeTopic);
    });
    try {
      client.on('error', () => {});
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.closed) {
        this.discard(client);
        return;
      }
      client.removeAllListeners('error');
      client.on('error', lost);
      client.on('end', lost);
      this.client = client;
      this.retryMs = 100;
      // Whatever changed while no LISTEN was in place was missed.
      if (this.gap) void this.emit('all');
      this.gap = false;
    } catch {
      this.discard(client);
      this.gap = true;
      this.schedule();
    } finally {
      this.connecting = null;
    }
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connecting = this.connect();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 2000);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.connecting;
    const c = this.client;
    this.client = null;
    if (c) {
      c.removeAllListeners();
      c.on('error', () => {});
      await c.end().catch(() => {});
    }
  }
}
