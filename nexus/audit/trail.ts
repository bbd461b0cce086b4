import bunyan from 'bunyan';
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Principal } from '../auth/principal.js';

export const GENESIS = '0'.repeat(64);
const HASH_FIELD = ',"hash":"';

/** One audit record: who did what to which path, and how it ended. Never a value, key or raw token. */
export interface AuditEntry {
  request_id?: string;
  port: 'mtls' | 'oidc' | 'script';
  principal?: Record<string, unknown>;
  action: string;
  path?: string;
  version?: number;
  decision: 'allow' | 'deny' | 'error';
  status: number;
  reason?: string;
  token_id?: string;
}

export function describePrincipal(p: Principal | undefined): Record<string, unknown> | undefined {
  if (!p) return undefined;
  if (p.kind === 'spiffe') return { spiffe_id: p.spiffeId };
  return { issuer: p.issuerUrl, subject: p.subject, roles: p.roles, via: p.via };
}

/** The hash a record line carries, and the body it covers (the line without its hash field). */
export function splitLine(line: string): { body: string; hash: string } | null {
  const at = line.lastIndexOf(HASH_FIELD);
  if (at < 0 || !line.endsWith('"}')) return null;
  return { body: `${line.slice(0, at)}}`, hash: line.slice(at + HASH_FIELD.length, -2) };
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/**
 * A bunyan raw stream that appends each record as one JSON line carrying
 * `prev` (the hash of the previous line) and its own `hash`, and rotates the
 * file by size. Records are queued and written together once per event-loop
 * turn (one stat and one write per batch instead of per record: the audit
 * write was measured at about half of a secret read's cost); each caller
 * awaits the flush that carries its record, so a failure is known before the
 * response goes out.
 */
class ChainedFileStream {
  lastError: Error | null = null;
  private prev = GENESIS;
  private size = 0;
  private fd: number | null = null;
  private ino = -1;
  private queue: Array<Record<string, unknown>> = [];
  private flushed: Promise<boolean> | null = null;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
  ) {}

  write(rec: Record<string, unknown>): void {
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

  /** (Re)opens the file and picks up the chain where it ends (another writer, e.g. a script, may have appended). */
  private reopen(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.prev = lastHash(this.file) ?? lastHashOfRotated(this.file) ?? GENESIS;
    this.fd = fs.openSync(this.file, 'a', 0o600);
    const st = fs.fstatSync(this.fd);
    this.ino = st.ino;
    this.size = st.size;
  }

  private flush(): boolean {
    const batch = this.queue;
    this.queue = [];
    try {
      // One stat per batch: notices a moved, replaced or deleted file, and appends by another writer.
      const st = fs.statSync(this.file, { throwIfNoEntry: false });
      if (this.fd === null || !st || st.ino !== this.ino || st.size !== this.size) this.reopen();
      if (this.size >= this.maxBytes) this.rotate();
      let prev = this.prev;
      let out = '';
      for (const rec of batch) {
        const body = JSON.stringify({ ...rec, prev });
        prev = sha256(body);
        out += `${body.slice(0, -1)}${HASH_FIELD}${prev}"}\n`;
      }
      fs.writeSync(this.fd!, out);
      this.prev = prev;
      this.size += Buffer.byteLength(out);
      this.lastError = null;
      return true;
    } catch (err) {
      this.lastError = err as Error;
      if (this.fd !== null) fs.closeSync(this.fd);
      this.fd = null;
      return false;
    }
  }

  private rotate(): void {
    let n = 1;
    while (fs.existsSync(`${this.file}.${n}`)) n++;
    fs.renameSync(this.file, `${this.file}.${n}`);
    // The chain continues: reopen() finds prev as the last hash of the rotated file.
    this.reopen();
  }
}

function lastLine(file: string): string | null {
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, 'utf8').trimEnd();
  if (!text) return null;
  return text.slice(text.lastIndexOf('\n') + 1);
}

function lastHash(file: string): string | null {
  const line = lastLine(file);
  return line ? (splitLine(line)?.hash ?? null) : null;
}

function lastHashOfRotated(file: string): string | null {
  const files = rotatedFiles(file);
  return files.length ? lastHash(files[files.length - 1]!) : null;
}

/** audit.jsonl.1, .2, ... in order (oldest first). */
export function rotatedFiles(file: string): string[] {
  const out: string[] = [];
  for (let n = 1; fs.existsSync(`${file}.${n}`); n++) out.push(`${file}.${n}`);
  return out;
}

/** The audit trail: its own bunyan logger and stream, apart from the app log. */
export class AuditTrail {
  private readonly stream: ChainedFileStream;
  private readonly logger: bunyan;
  private readonly hmacKey: Buffer | null;

  /** `rootKey` may be null for admin scripts, which record no token ids. */
  constructor(
    readonly file: string,
    rootKey: Buffer | null,
    maxBytes = 64 * 1024 * 1024,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.stream = new ChainedFileStream(file, maxBytes);
    this.logger = bunyan.createLogger({ name: 'nexus-audit', streams: [{ type: 'raw', level: 'info', stream: this.stream as unknown as NodeJS.WritableStream }] });
    // Token ids are correlatable but not replayable: an HMAC under a key derived from the root key.
    this.hmacKey = rootKey && createHmac('sha256', rootKey).update('nexus/audit-token-id/v1').digest();
  }

  tokenId(raw: string): string {
    if (!this.hmacKey) throw new Error('this audit trail was opened without the root key');
    return createHmac('sha256', this.hmacKey).update(raw).digest('hex').slice(0, 32);
  }

  /** Appends one record; resolves false when it could not be written (the caller fails closed). */
  record(entry: AuditEntry): Promise<boolean> {
    this.logger.info(entry, entry.action);
    return this.stream.settled();
  }

  writable(): boolean {
    return this.stream.lastError === null;
  }
}

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** "file:line: why" of the first broken record. */
  broken?: string;
}

/** Walks every file of the trail in order and checks each record's hash and link. */
export function verifyTrail(file: string): VerifyResult {
  let prev = GENESIS;
  let records = 0;
  for (const f of [...rotatedFiles(file), file]) {
    if (!fs.existsSync(f)) continue;
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (let i = 0; i < lines.length; i++) {
      const where = `${path.basename(f)}:${i + 1}`;
      const parts = splitLine(lines[i]!);
      if (!parts) return { ok: false, records, broken: `${where}: not an audit record` };
      if (sha256(parts.body) !== parts.hash) return { ok: false, records, broken: `${where}: record was altered (hash mismatch)` };
      let rec: { prev?: string };
      try {
        rec = JSON.parse(parts.body) as { prev?: string };
      } catch {
        return { ok: false, records, broken: `${where}: not JSON` };
      }
      if (rec.prev !== prev) return { ok: false, records, broken: `${where}: chain broken (a record before it was removed or reordered)` };
      prev = parts.hash;
      records++;
    }
  }
  return { ok: true, records };
}
