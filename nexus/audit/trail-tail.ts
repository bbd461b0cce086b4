import fs from 'node:fs';
import type { ChainHead } from '../storage/audit-repo.js';
import { lastLine, rotatedFiles } from './chain.js';
import { chainFieldsOf } from './syslog-format.js';

/** A record's place in its chain. */
export interface Position {
  gen: number;
  seq: number;
  mac: string;
}

export interface TailRecord extends Position {
  /** The trail line as written, without its newline. */
  line: string;
}

/** Whether `a` comes after `b` in the chain (a new generation comes after every record of the old one). */
export function isAfter(a: { gen: number; seq: number }, b: { gen: number; seq: number }): boolean {
  return a.gen > b.gen || (a.gen === b.gen && a.seq > b.seq);
}

/**
 * Reads a chain's records, in order, after a position: across its rotated
 * files (audit.jsonl.N, oldest first) into the current one, following
 * rotation as it happens. The position is a record (generation, sequence),
 * not a byte offset, so it survives rotation, restarts and a trail set aside
 * after a break. It never reads past `limit` (the writer's anchored head): a
 * batch the writer cuts off again after a failure is never sent.
 */
export class TrailTail {
  private fh: fs.promises.FileHandle | null = null;
  private openPath: string | null = null;
  private ino = -1;
  private offset = 0;
  private chunk = 64 * 1024;
  /** When a chain with no file yet (no script has run) is looked for again (ms since the epoch). */
  private locateAt = 0;

  constructor(
    private readonly file: string,
    private pos: Position | null,
    private readonly limit?: () => ChainHead,
  ) {}

  /** The last record read (null: none yet). */
  position(): Position | null {
    return this.pos;
  }

  /** The next read starts after `pos` (null: from the chain's first kept record). */
  async seek(pos: Position | null): Promise<void> {
    this.pos = pos;
    this.locateAt = 0;
    await this.close();
  }

  /** Whole records after the position, about `maxBytes` of them; [] when nothing new is written yet. */
  async read(maxBytes = this.chunk): Promise<TailRecord[]> {
    // Moving to the next file happens at most a few times per read; skipping records already sent, as often as it takes.
    for (let moves = 0; moves < 3; ) {
      if (!this.fh && !(await this.locate())) return [];
      const out = await this.readFromFile(Math.max(maxBytes, this.chunk));
      if (out === 'moved') continue;
      if (out.length > 0 || !(await this.leftBehind())) return out;
      await this.close();
      moves++;
    }
    return [];
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.openPath = null;
    await fh?.close();
  }

  /** Reads whole lines from the open file; 'moved' when the position moved on without a record to return (skipped lines). */
  private async readFromFile(size: number): Promise<TailRecord[] | 'moved'> {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await this.fh!.read(buf, 0, size, this.offset);
    const end = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (end < 0) {
      // A record longer than the buffer: read it with a larger one next time.
      if (bytesRead === size) this.chunk = size * 2;
      return [];
    }
    const limit = this.limit?.();
    const out: TailRecord[] = [];
    let at = 0;
    let skipped = false;
    while (at <= end) {
      const nl = buf.indexOf(0x0a, at);
      const line = buf.toString('utf8', at, nl);
      const f = chainFieldsOf(line);
      if (f && limit && isAfter(f, { gen: limit.generation, seq: limit.count })) break;
      this.offset += nl + 1 - at;
      at = nl + 1;
      if (!f || (this.pos && !isAfter(f, this.pos))) {
        skipped = true;
        continue;
      }
      out.push({ ...f, line });
      this.pos = f;
    }
    return out.length === 0 && skipped ? 'moved' : out;
  }

  /** At the end of the open file: has the chain gone on in another file (this one rotated, or set aside)? */
  private async leftBehind(): Promise<boolean> {
    if (this.openPath !== this.file) return true;
    try {
      return (await fs.promises.stat(this.file)).ino !== this.ino;
    } catch {
      return false;
    }
  }

  /** Opens the first file holding a record after the position (the current file when none does yet). */
  private async locate(): Promise<boolean> {
    if (Date.now() < this.locateAt) return false;
    const files = [...rotatedFiles(this.file), this.file];
    let pick = this.file;
    for (const f of files) {
      const last = chainFieldsOf(lastLine(f) ?? '');
      if (last && (!this.pos || isAfter(last, this.pos))) {
        pick = f;
        break;
      }
    }
    try {
      this.fh = await fs.promises.open(pick, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.locateAt = Date.now() + 1000;
        return false;
      }
      throw err;
    }
    this.openPath = pick;
    this.ino = (await this.fh.stat()).ino;
    this.offset = 0;
    return true;
  }
}
