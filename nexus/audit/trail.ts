import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Principal } from '../auth/principal.js';
import type { RootKey } from '../crypto/root-key.js';
import type { Logger } from '../log.js';
import type { AnchorStore, ChainHead } from '../storage/audit-repo.js';
import { ChainWriter, type ChainBreak, type ChainWriterOptions } from './chain.js';
import type { AuditKeys } from './keys.js';

/** One audit record: who did what to which path, and how it ended. Never a value, key or raw token. */
export interface AuditEntry {
  request_id?: string;
  /** `sweeper`: the lease sweeper, acting on its own; `server`: the trail itself (audit_integrity). */
  port: 'mtls' | 'oidc' | 'script' | 'sweeper' | 'server';
  principal?: Record<string, unknown>;
  action: string;
  /** HTTP method and route template (`/v1/secrets/{path}`) of a request. */
  method?: string;
  route?: string;
  path?: string;
  version?: number;
  /** The object a configuration change touches, with a digest of its new definition. */
  object?: { kind: string; name: string; digest?: string };
  /** The versions a delete, undelete or destroy named. */
  versions?: number[];
  /** A change is recorded twice: its intent before it commits, its outcome after. */
  phase?: 'intent' | 'outcome';
  decision: 'allow' | 'deny' | 'error';
  /** The HTTP status (or exit code); absent on an intent, which has no answer yet. */
  status?: number;
  reason?: string;
  token_id?: string;
  /** A database credential lease created, renewed or revoked (never its password). */
  lease?: { id: string; role: string; connection: string; username: string; caller: string; expires_at?: string; attempts?: number };
  /** `signal`: an access signal (nexus/signals/), which names its signal, the client address and why. */
  kind?: 'signal';
  signal?: string;
  address?: string;
  why?: string;
  /** How many credentials a revocation ended (a CI end-of-work event). */
  revoked?: number;
}

// Principals are kept per connection (SVIDs) or per token: so are their descriptions.
const described = new WeakMap<Principal, Record<string, unknown>>();

export function describePrincipal(p: Principal | undefined): Record<string, unknown> | undefined {
  if (!p) return undefined;
  let d = described.get(p);
  if (!d) {
    d = p.kind === 'spiffe' ? { spiffe_id: p.spiffeId } : { issuer: p.issuerUrl, subject: p.subject, roles: p.roles, via: p.via };
    described.set(p, d);
  }
  return d;
}

const json = JSON.stringify;
/** The fields every record of this process has after its name and replica. */
const PROCESS_FIELDS = `,"hostname":${json(os.hostname())},"pid":${process.pid},"level":30`;
// A principal's description is one object per principal (above): its JSON is made once too.
const principalJson = new WeakMap<object, string>();

function objectJson(o: Record<string, unknown>): string {
  let j = principalJson.get(o);
  if (j === undefined) {
    j = json(o);
    principalJson.set(o, j);
  }
  return j;
}

/**
 * One record as one line of JSON, with the fields a bunyan record had (so
 * readers of the trail see the same shape), absent ones left out, exactly as
 * JSON.stringify would write the same object. Built field by field: this runs
 * once per request, and stringifying a 29-field object, most of it absent,
 * with the principal's description every time, cost more than the HMAC.
 */
export function serializeEntry(e: AuditEntry, now = new Date(), replica?: string): string {
  let s = replica ? `{"name":"nexus-audit","replica":${json(replica)}${PROCESS_FIELDS}` : `{"name":"nexus-audit"${PROCESS_FIELDS}`;
  if (e.request_id !== undefined) s += `,"request_id":${json(e.request_id)}`;
  s += `,"port":${json(e.port)}`;
  if (e.principal !== undefined) s += `,"principal":${objectJson(e.principal)}`;
  s += `,"action":${json(e.action)}`;
  if (e.method !== undefined) s += `,"method":${json(e.method)}`;
  if (e.route !== undefined) s += `,"route":${json(e.route)}`;
  if (e.path !== undefined) s += `,"path":${json(e.path)}`;
  if (e.version !== undefined) s += `,"version":${json(e.version)}`;
  if (e.versions !== undefined) s += `,"versions":${json(e.versions)}`;
  if (e.object !== undefined) s += `,"object":${json(e.object)}`;
  if (e.phase !== undefined) s += `,"phase":${json(e.phase)}`;
  s += `,"decision":${json(e.decision)}`;
  if (e.status !== undefined) s += `,"status":${json(e.status)}`;
  if (e.reason !== undefined) s += `,"reason":${json(e.reason)}`;
  if (e.token_id !== undefined) s += `,"token_id":${json(e.token_id)}`;
  if (e.lease !== undefined) s += `,"lease":${json(e.lease)}`;
  if (e.kind !== undefined) s += `,"kind":${json(e.kind)}`;
  if (e.signal !== undefined) s += `,"signal":${json(e.signal)}`;
  if (e.address !== undefined) s += `,"address":${json(e.address)}`;
  if (e.why !== undefined) s += `,"why":${json(e.why)}`;
  if (e.revoked !== undefined) s += `,"revoked":${json(e.revoked)}`;
  return `${s},"msg":${json(e.action)},"time":"${now.toISOString()}","v":0}`;
}

/**
 * Serialized records over a ChainWriter. Records are queued and written
 * together once per event-loop turn (one stat, one write and one anchor
 * update per batch instead of per record); each caller awaits the flush that
 * carries its record, so a failure is known before the response goes out.
 */
class BatchingStream {
  lastError: Error | null = null;
  /** Told once per outage: when a write fails after one that succeeded. */
  onFailure: ((err: Error) => void) | null = null;
  private queue: string[] = [];
  private flushed: Promise<boolean> | null = null;

  constructor(private readonly writer: ChainWriter) {}

  write(rec: string): void {
    this.queue.push(rec);
    this.flushed ??= new Promise((resolve) =>
      setImmediate(() => {
        this.flushed = null;
        resolve(this.flush());
      }),
    );
  }

  /** Resolves when the batch holding the latest record is on disk (true) or failed (false). */
  settled(): Promise<boolean> {
    return this.flushed ?? Promise.resolve(this.lastError === null);
  }

  private flush(): boolean {
    const batch = this.queue;
    this.queue = [];
    try {
      this.writer.append(batch);
      this.lastError = null;
      return true;
    } catch (err) {
      const first = this.lastError === null;
      this.lastError = err as Error;
      if (first) this.onFailure?.(err as Error);
      return false;
    }
  }
}

export interface AuditTrailOptions {
  file: string;
  /** Its name in audit_anchor (default `server`; `server@<replica id>` on a shared database). */
  chain?: string;
  rootKey: RootKey;
  keys: AuditKeys;
  anchor: AnchorStore;
  /** This process's replica id, carried by every record. */
  replica?: string;
  log: Logger;
  writer?: Partial<ChainWriterOptions>;
}

/** The audit trail: its own chained file, apart from the app log (bunyan stays there). */
export class AuditTrail {
  readonly file: string;
  /** Its name in audit_anchor. */
  readonly chain: string;
  /** The break found at start, if the trail did not match its anchor. */
  readonly chainBreak: ChainBreak | null;
  private readonly writer: ChainWriter;
  private readonly stream: BatchingStream;
  private readonly tokenKey: Buffer;
  private readonly replica: string | undefined;

  constructor(opts: AuditTrailOptions) {
    this.file = opts.file;
    this.chain = opts.chain ?? 'server';
    fs.mkdirSync(path.dirname(opts.file), { recursive: true, mode: 0o700 });
    this.writer = new ChainWriter(opts.file, this.chain, opts.keys, opts.anchor, { maxBytes: 64 * 1024 * 1024, fsync: false, maxFiles: null, ...opts.writer });
    this.chainBreak = this.writer.resume();
    if (this.writer.tornBytesCut > 0) {
      opts.log.warn({ audit_file: opts.file, bytes: this.writer.tornBytesCut }, 'cut a torn last record off the audit trail: a write that never completed, after the anchored head');
    }
    if (this.chainBreak) {
      opts.log.error(
        { audit_file: opts.file, generation: this.chainBreak.generation, detail: this.chainBreak.detail },
        `audit trail does not match its anchor: ${this.chainBreak.detail}; a new segment (generation ${this.chainBreak.generation}) records the break`,
      );
    }
    this.stream = new BatchingStream(this.writer);
    this.replica = opts.replica;
    // Token ids are correlatable but not replayable: an HMAC under a key derived from the root key.
    this.tokenKey = createHmac('sha256', opts.rootKey.bytes).update('nexus/audit-token-id/v1').digest();
  }

  tokenId(raw: string): string {
    return createHmac('sha256', this.tokenKey).update(raw).digest('hex').slice(0, 32);
  }

  /** Appends one record; resolves false when it could not be written (the caller fails closed). */
  record(entry: AuditEntry): Promise<boolean> {
    this.stream.write(serializeEntry(entry, new Date(), this.replica));
    return this.stream.settled();
  }

  /** `fn` hears of each outage once, as it begins (the access signal audit_integrity). */
  onUnwritable(fn: (err: Error) => void): void {
    this.stream.onFailure = fn;
  }

  /** The chain's head: its last record on disk and anchored (the forwarder sends no further, the head gauges show it). */
  head(): ChainHead {
    return this.writer.current();
  }

  writable(): boolean {
    return this.stream.lastError === null;
  }

  close(): void {
    this.writer.close();
  }
}
