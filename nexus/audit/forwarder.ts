import type { Logger } from '../log.js';
import type { ChainHead } from '../storage/audit-repo.js';
import { readForwardState, writeForwardState } from './forward-position.js';
import { formatRfc5424, frameOctetCounted } from './syslog-format.js';
import type { SyslogTarget } from './syslog-target.js';
import { ConnectError, connectSyslog, type SyslogConnection } from './syslog-transport.js';
import { TrailTail, type Position } from './trail-tail.js';

export interface ForwardedChain {
  /** Its name in audit_anchor, carried in every message's structured data. */
  name: string;
  file: string;
  /** The writer's anchored head (in-process chains): nothing past it is sent, and lag is counted against it. */
  head?: () => ChainHead;
}

export interface ForwarderOptions {
  target: SyslogTarget;
  /** PEM CA bundle for tls:// (null: the system's CAs). */
  ca: string | null;
  chains: ForwardedChain[];
  /** Where positions are kept between runs (in the data dir). */
  stateFile: string;
  log: Logger;
  /** Counts a failure: `connect`, `tls` (certificate refused, handshake failed) or `io` (connection lost). */
  onError(reason: 'connect' | 'tls' | 'io'): void;
  /** Bytes sent that may still be in flight after a connection is lost, and are sent again (default 4 MiB). */
  resendBytes?: number;
  pollMs?: number;
  maxBackoffMs?: number;
}

interface Sent {
  chain: string;
  pos: Position;
  /** Bytes sent on this connection up to and including this record. */
  end: number;
}

const READ_BYTES = 64 * 1024;

/**
 * Sends every audit record to a syslog receiver, tailing the trail files (the
 * outbox). Requests never wait on it: it runs on its own, reads only what the
 * socket can take (a receiver that stops reading pauses the tail, not the
 * server), and the trail stays the fail-closed record.
 *
 * Syslog has no acknowledgements, so delivery is at-least-once by resending:
 * after a lost connection the forwarder goes back to the oldest record that
 * may still have been in the kernel's buffers or the receiver's (the last
 * `resendBytes` sent), and the kept position lags the same way, so a restart
 * resends too. Each message carries the record's generation and sequence
 * number: a receiver (and `nexus-audit verify`) drops repeats by them.
 */
export class AuditForwarder {
  private readonly tails = new Map<string, TrailTail>();
  /** Per chain, the last record known sent beyond the resend window (what is kept on disk). */
  private readonly confirmed: Record<string, Position>;
  private window: Sent[] = [];
  /** Entries of `window` before this index are confirmed (dropped in bulk, not one shift per record). */
  private windowStart = 0;
  private sentBytes = 0;
  private conn: SyslogConnection | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private persistedAt = 0;
  private dirty = false;
  private readonly resendBytes: number;

  constructor(private readonly opts: ForwarderOptions) {
    this.resendBytes = opts.resendBytes ?? 4 * 1024 * 1024;
    this.confirmed = readForwardState(opts.stateFile, opts.target.url);
    for (const c of opts.chains) this.tails.set(c.name, new TrailTail(c.file, this.confirmed[c.name] ?? null, c.head));
  }

  start(): void {
    this.running ??= this.run().catch((err: unknown) => this.opts.log.error({ err }, 'audit forwarding stopped'));
  }

  /** Records the in-process chains hold that have not been sent yet. */
  lag(): number {
    let n = 0;
    for (const c of this.opts.chains) {
      if (!c.head) continue;
      const head = c.head();
      const sent = this.tails.get(c.name)!.position();
      n += !sent || sent.gen !== head.generation ? head.count : Math.max(0, head.count - sent.seq);
    }
    return n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn?.destroy();
    this.wake?.();
    // A connection attempt still pending (a receiver that drops SYNs) is not waited for: it is closed when it returns.
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 1000).unref())]);
    for (const t of this.tails.values()) await t.close();
    this.persist(true);
  }

  private async run(): Promise<void> {
    let backoffMs = 100;
    let failing = false;
    while (!this.stopped) {
      try {
        this.conn = await connectSyslog(this.opts.target, this.opts.ca);
      } catch (err) {
        const reason = err instanceof ConnectError ? err.reason : 'connect';
        this.opts.onError(reason);
        if (!failing) this.opts.log.warn({ err, receiver: this.opts.target.url, reason }, 'audit forwarding: cannot reach the syslog receiver; records wait in the trail');
        failing = true;
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.opts.maxBackoffMs ?? 5000);
        continue;
      }
      if (this.stopped) {
        this.conn.destroy();
        break;
      }
      const connectedAt = Date.now();
      failing = false;
      this.opts.log.info({ receiver: this.opts.target.url }, 'audit forwarding: connected to the syslog receiver');
      // Whatever may not have arrived on the last connection goes again.
      for (const [name, tail] of this.tails) await tail.seek(this.confirmed[name] ?? null);
      this.window = [];
      this.windowStart = 0;
      this.sentBytes = 0;
      const conn = this.conn;
      void conn.lost.then(() => this.wake?.());
      try {
        await this.pump(conn);
      } catch (err) {
        if (!this.stopped) {
          this.opts.onError('io');
          this.opts.log.warn({ err, receiver: this.opts.target.url }, 'audit forwarding: lost the connection; will resend from the last confirmed record');
        }
      } finally {
        conn.destroy();
        this.conn = null;
      }
      // A receiver that accepts and then drops the connection at once is retried with backoff, like one that refuses.
      if (Date.now() - connectedAt < 5000) {
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.opts.maxBackoffMs ?? 5000);
      } else backoffMs = 100;
    }
  }

  /** Sends until the connection is lost (throws) or the forwarder stops. */
  private async pump(conn: SyslogConnection): Promise<void> {
    let lost: Error | null = null;
    void conn.lost.then((err) => (lost = err));
    const framed = this.opts.target.protocol !== 'udp';
    while (!this.stopped) {
      if (lost) throw lost;
      let backlog = false;
      for (const [name, tail] of this.tails) {
        // On a stream, one write per read (one syscall for ~64 KiB of records, not one per record); a datagram per record on UDP.
        const batch: Buffer[] = [];
        const recs = await tail.read(READ_BYTES);
        let bytes = 0;
        for (const rec of recs) bytes += rec.line.length;
        if (bytes >= READ_BYTES / 2) backlog = true;
        for (const rec of recs) {
          const msg = formatRfc5424(rec.line, name, undefined, rec);
          if (!msg) continue;
          const buf = framed ? frameOctetCounted(msg) : Buffer.from(msg);
          this.sentBytes += buf.length;
          this.window.push({ chain: name, pos: { gen: rec.gen, seq: rec.seq, mac: rec.mac }, end: this.sentBytes });
          if (framed) batch.push(buf);
          else if (!conn.write(buf)) await conn.drained();
        }
        // Bounded in flight: the tail waits for the socket, never the other way round.
        if (batch.length > 0 && !conn.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch))) await conn.drained();
        if (this.stopped) return;
      }
      this.confirm();
      this.persist(false);
      // A backlog is sent at full speed; otherwise what arrives is gathered for a poll interval and sent in one write.
      if (!backlog) await this.sleep(this.opts.pollMs ?? 100);
    }
  }

  /** Records sent more than resendBytes ago cannot still be in a buffer: they need no resend. */
  private confirm(): void {
    let i = this.windowStart;
    while (i < this.window.length && this.window[i]!.end <= this.sentBytes - this.resendBytes) {
      const s = this.window[i]!;
      this.confirmed[s.chain] = s.pos;
      this.dirty = true;
      i++;
    }
    this.windowStart = i;
    if (i > 4096 && i * 2 > this.window.length) {
      this.window = this.window.slice(i);
      this.windowStart = 0;
    }
  }

  private persist(force: boolean): void {
    const now = Date.now();
    if (!this.dirty || (!force && now - this.persistedAt < 1000)) return;
    try {
      writeForwardState(this.opts.stateFile, { receiver: this.opts.target.url, chains: this.confirmed });
      this.dirty = false;
      this.persistedAt = now;
    } catch (err) {
      this.opts.log.warn({ err, file: this.opts.stateFile }, 'audit forwarding: could not keep the position (records may be sent again)');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
