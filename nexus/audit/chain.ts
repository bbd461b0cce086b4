import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AnchorStore, ChainHead } from '../storage/audit-repo.js';
import type { AuditKeys } from './keys.js';

export const GENESIS = '0'.repeat(64);
const MAC_FIELD = ',"mac":"';

/** The chain fields every record line carries (before its `mac`). */
export interface Chained {
  gen: number;
  seq: number;
  /** Check value of the root key whose audit key made `mac`. */
  key: string;
  prev: string;
  action?: string;
  reason?: string;
}

/** A line split into the body its MAC covers (the line without the mac field) and the MAC. */
export function splitLine(line: string): { body: string; mac: string } | null {
  const at = line.lastIndexOf(MAC_FIELD);
  if (at < 0 || !line.endsWith('"}')) return null;
  return { body: `${line.slice(0, at)}}`, mac: line.slice(at + MAC_FIELD.length, -2) };
}

export function macOf(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

/** One record as a line: the body with its chain fields, then the MAC of that body. */
export function sealLine(rec: object | string, chain: Omit<Chained, 'action' | 'reason'>, key: Buffer): { line: string; mac: string } {
  // A record may come serialized already (the request trail does it once, flat); the chain fields go at its end.
  const json = typeof rec === 'string' ? rec : JSON.stringify(rec);
  const tail = `"gen":${chain.gen},"seq":${chain.seq},"key":${JSON.stringify(chain.key)},"prev":${JSON.stringify(chain.prev)}}`;
  const body = json === '{}' ? `{${tail}` : `${json.slice(0, -1)},${tail}`;
  const mac = macOf(key, body);
  return { line: `${body.slice(0, -1)}${MAC_FIELD}${mac}"}\n`, mac };
}

/** audit.jsonl.1, .2, ... oldest first (by number: retention may have removed the first ones). */
export function rotatedFiles(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const re = /^(\d+)$/;
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${base}.`) && re.test(f.slice(base.length + 1)))
    .map((f) => Number(f.slice(base.length + 1)))
    .sort((a, b) => a - b)
    .map((n) => `${file}.${n}`);
}

/** A read-only descriptor of `file`, or null when there is no such file. */
function openExisting(file: string): number | null {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The last non-empty line of a file (of its first `size` bytes), read from its end in chunks (never the whole file). */
export function lastLine(file: string, size?: number): string | null {
  const fd = openExisting(file);
  if (fd === null) return null;
  try {
    let end = size ?? fs.fstatSync(fd).size;
    let tail = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - 8 * 1024);
      const chunk = Buffer.alloc(end - start);
      fs.readSync(fd, chunk, 0, chunk.length, start);
      tail = Buffer.concat([chunk, tail]);
      end = start;
      const text = tail.toString('utf8').replace(/\n+$/, '');
      const nl = text.lastIndexOf('\n');
      if (nl >= 0) return text.slice(nl + 1);
      if (end === 0) return text || null;
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function parseChained(line: string | null): (Chained & { mac: string; body: string }) | null {
  const parts = line ? splitLine(line) : null;
  if (!parts) return null;
  try {
    const rec = JSON.parse(parts.body) as Chained;
    if (!Number.isInteger(rec.gen) || !Number.isInteger(rec.seq) || typeof rec.key !== 'string') return null;
    return { ...rec, mac: parts.mac, body: parts.body };
  } catch {
    return null;
  }
}

/**
 * Where the last whole line of a file ends, when the file does not end on
 * one: a record torn off part way (the process died during a write, or
 * could not cut a failed one back). Null when the file ends with a newline.
 */
export function tornTail(file: string): { size: number; whole: number } | null {
  const fd = openExisting(file);
  if (fd === null) return null;
  try {
    const size = fs.fstatSync(fd).size;
    const last = Buffer.alloc(1);
    if (size === 0 || (fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] === 0x0a)) return null;
    // Records are a few KiB at most: the newline before the fragment is near.
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - 8 * 1024);
      const chunk = Buffer.alloc(end - start);
      fs.readSync(fd, chunk, 0, chunk.length, start);
      const nl = chunk.lastIndexOf(0x0a);
      if (nl >= 0) return { size, whole: start + nl + 1 };
      end = start;
    }
    return { size, whole: 0 };
  } finally {
    fs.closeSync(fd);
  }
}

/** The head the files show: the last record of the newest non-empty file (of the current file's first `size` bytes). */
export function fileHead(file: string, size?: number): { head: ChainHead; body: string; mac: string } | 'unreadable' | null {
  for (const f of [file, ...rotatedFiles(file).reverse()]) {
    const line = lastLine(f, f === file ? size : undefined);
    if (line === null) continue;
    const rec = parseChained(line);
    if (!rec) return 'unreadable';
    return { head: { generation: rec.gen, count: rec.seq, mac: rec.mac, kcv: rec.key }, body: rec.body, mac: rec.mac };
  }
  return null;
}

/**
 * How the end of a chain differs from its anchor, in words that name what is
 * missing; null when they agree. `head` is the chain's last record (null: no
 * records); a head past the anchor is genuine only when `aheadIsGenuine` (its
 * MAC checked): the last batch reached the file before the anchor moved.
 */
export function compareToAnchor(head: ChainHead | null, anchor: ChainHead | null, aheadIsGenuine: boolean): string | null {
  if (!anchor) return head ? 'the trail has records but the database holds no anchor for it' : null;
  if (!head) return `the trail is empty, but the anchor records ${anchor.count} record(s) of generation ${anchor.generation}`;
  const g = anchor.generation;
  if (head.generation < g) {
    return `the trail ends in generation ${head.generation}, but the anchor is at generation ${g}: an older copy; records ${missingRange(1, anchor.count)} of generation ${g} are missing`;
  }
  if (head.generation === g && head.count < anchor.count) {
    return `the trail ends at record ${head.count}, but the anchor says ${anchor.count}: records ${missingRange(head.count + 1, anchor.count)} of generation ${g} are missing (cut)`;
  }
  if (head.generation === g && head.count === anchor.count) {
    return head.mac === anchor.mac ? null : `record ${head.count} of generation ${g} is not the anchored one (replaced)`;
  }
  return aheadIsGenuine ? null : `the trail ends past its anchor (generation ${g}, ${anchor.count} record(s)) with a record that fails its MAC`;
}

/** The files' end against the anchor, at start (only the last line is read). */
function startMismatch(anchor: ChainHead | null, found: ReturnType<typeof fileHead>, keys: AuditKeys): string | null {
  if (found === 'unreadable') return 'the last line of the trail is not an audit record';
  const key = found && keys.get(found.head.kcv);
  return compareToAnchor(found?.head ?? null, anchor, Boolean(found && key && macOf(key, found.body) === found.mac));
}

export function missingRange(from: number, to: number): string {
  return from === to ? `${from}` : `${from}-${to}`;
}

export interface ChainWriterOptions {
  /** Rotate when the file reaches this size. */
  maxBytes: number;
  /** fsync each batch before it counts as written (NEXUS_AUDIT_FSYNC=batch). */
  fsync: boolean;
  /** Rotated files kept (NEXUS_AUDIT_MAX_FILES); the oldest beyond it are deleted, each deletion recorded. null: keep all. */
  maxFiles: number | null;
}

/**
 * How often the trail's path is checked for another file (moved, replaced or
 * deleted): by time, not with a stat per batch (about 3% of a secret read's
 * server CPU). Records written meanwhile land in the file still open, and the
 * anchor counts them, so a deleted trail shows in verify as records missing.
 */
export const IDENTITY_CHECK_MS = 100;

export interface ChainBreak {
  /** What the anchor said versus what the files hold. */
  detail: string;
  generation: number;
}

/**
 * Appends records to one chain (a file and its rotated copies) and keeps its
 * anchor in step, batch by batch. The chain's head lives in memory: nothing
 * is read back from the file after start (another writer, a replaced or
 * moved file, shows up in verify as a gap or a fork, not as a new head).
 */
export class ChainWriter {
  private head: ChainHead;
  private fd: number | null = null;
  private ino = -1;
  private size = 0;
  /** When the path is next checked for another file (ms since the epoch). */
  private identityCheckAt = 0;
  /** Records of retention deletions, written at the head of the next batch. */
  private deletions: object[] = [];
  /** Bytes of a torn last record that resume() cut off (0: none). */
  tornBytesCut = 0;
  /** Where the open file must be cut back to before the next write: a failed batch's start, if cutting it failed. */
  private cutTo: number | null = null;

  constructor(
    private readonly file: string,
    private readonly chain: string,
    private readonly keys: AuditKeys,
    private readonly anchor: AnchorStore,
    private readonly opts: ChainWriterOptions,
  ) {
    this.head = { generation: 1, count: 0, mac: GENESIS, kcv: keys.kcv };
  }

  /**
   * Picks up the chain where its anchor says it ends. A trail that does not
   * match is not continued: the current file is set aside and a new
   * generation begins with a record of the break. A new root key is recorded
   * as a key change. Returns the break, if any.
   */
  resume(): ChainBreak | null {
    const anchor = this.anchor.get(this.chain);
    const torn = tornTail(this.file);
    const found = fileHead(this.file, torn?.whole);
    const mismatch = startMismatch(anchor, found, this.keys);
    // A torn last record after the anchored head is a write that never completed (never acknowledged): cut off, as a failed append is.
    if (torn && !mismatch) {
      const fd = fs.openSync(this.file, 'r+');
      try {
        fs.ftruncateSync(fd, torn.whole);
      } finally {
        fs.closeSync(fd);
      }
      this.tornBytesCut = torn.size - torn.whole;
    }
    if (mismatch) {
      const last = found && found !== 'unreadable' ? found.head : null;
      const generation = Math.max(anchor?.generation ?? 0, last?.generation ?? 0) + 1;
      if (fs.existsSync(this.file) && fs.statSync(this.file).size > 0) this.rotate();
      this.head = { generation, count: 0, mac: anchor?.mac ?? GENESIS, kcv: this.keys.kcv };
      this.append([{ time: new Date().toISOString(), action: 'audit.break', reason: `break recorded at start: ${mismatch}`, anchor, found: last }]);
      return { detail: mismatch, generation };
    }
    if (found && found !== 'unreadable') this.head = { ...found.head };
    else if (anchor) this.head = { ...anchor };
    if (this.head.kcv !== this.keys.kcv) {
      this.append([{ time: new Date().toISOString(), action: 'audit.key_change', from_key: this.head.kcv }]);
    }
    return null;
  }

  /**
   * Writes a batch (all of it, or throws) and moves the anchor to its last
   * record. A batch that fails part way (a full disk, a short write, an
   * anchor that cannot move) is cut off the file again before anything else
   * is written: the file ends on its last complete record, which is the
   * chain's head in memory and the anchor's, so a full disk never reads as a
   * torn record or a fork.
   */
  append(batch: Array<object | string>): void {
    let start: number | null = null;
    try {
      if (this.cutTo !== null && this.fd !== null) this.cutBack(this.cutTo);
      // A moved, replaced or deleted file is reopened (and the gap shows in verify).
      const now = Date.now();
      if (now >= this.identityCheckAt) {
        this.identityCheckAt = now + IDENTITY_CHECK_MS;
        if (this.fd !== null && fs.statSync(this.file, { throwIfNoEntry: false })?.ino !== this.ino) this.close();
      }
      if (this.fd === null) this.reopen();
      if (this.size >= this.opts.maxBytes) this.rotate();
      let head = this.head;
      let out = '';
      for (const rec of [...this.deletions, ...batch]) {
        const sealed = sealLine(rec, { gen: head.generation, seq: head.count + 1, key: this.keys.kcv, prev: head.mac }, this.keys.current);
        out += sealed.line;
        head = { generation: head.generation, count: head.count + 1, mac: sealed.mac, kcv: this.keys.kcv };
      }
      start = this.size;
      writeFully(this.fd!, Buffer.from(out));
      if (this.opts.fsync) fs.fsyncSync(this.fd!);
      this.anchor.set(this.chain, head);
      this.size += Buffer.byteLength(out);
      this.head = head;
      this.deletions = [];
    } catch (err) {
      if (start !== null) this.cutTo = start;
      try {
        if (this.cutTo !== null && this.fd !== null) this.cutBack(this.cutTo);
      } catch {
        // The fd stays open, and the next append cuts it back before it writes (or fails again).
        throw err;
      }
      this.close();
      throw err;
    }
  }

  /** The last record written and anchored (a failed batch never shows here). */
  current(): ChainHead {
    return this.head;
  }

  /** Cuts the open file back to `size` bytes (where a failed batch began). */
  private cutBack(size: number): void {
    fs.ftruncateSync(this.fd!, size);
    this.size = size;
    this.cutTo = null;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  private reopen(): void {
    const was = this.ino;
    this.close();
    this.fd = fs.openSync(this.file, 'a', 0o600);
    const st = fs.fstatSync(this.fd);
    this.ino = st.ino;
    this.size = st.size;
    // A failed batch still on this file (closed before it could be cut) comes off before anything is added.
    if (this.cutTo !== null && st.ino === was) this.cutBack(this.cutTo);
    this.cutTo = null;
  }

  /** The current file becomes audit.jsonl.N; the chain goes on in a new file (its head is in memory). */
  private rotate(): void {
    this.close();
    const last = rotatedFiles(this.file).at(-1);
    const n = last ? Number(last.slice(this.file.length + 1)) + 1 : 1;
    fs.renameSync(this.file, `${this.file}.${n}`);
    this.reopen();
    this.applyRetention();
  }

  /**
   * Deletes the oldest rotated files beyond maxFiles. Each deletion is
   * recorded with the head the file ended on (read from its tail only), so
   * verify knows where the kept trail picks up and that nothing else is gone.
   */
  private applyRetention(): void {
    if (this.opts.maxFiles === null) return;
    const files = rotatedFiles(this.file);
    for (const f of files.slice(0, Math.max(0, files.length - this.opts.maxFiles))) {
      const end = fileHead(f);
      fs.rmSync(f);
      this.deletions.push({ time: new Date().toISOString(), action: 'audit.retention', deleted: path.basename(f), through: end === 'unreadable' || end === null ? null : end.head });
    }
  }
}

/** writeSync may write less than asked: finish the job, or fail (never a silently short record). */
export function writeFully(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw new Error(`audit write made no progress (${off} of ${buf.length} bytes)`);
    off += n;
  }
}
