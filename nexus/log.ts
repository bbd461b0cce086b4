import bunyan from 'bunyan';
import fs from 'node:fs';
import os from 'node:os';
import tty from 'node:tty';
import type { Writable } from 'node:stream';

export type Logger = bunyan;

/**
 * Field names whose values are never written, whatever a caller passes.
 * A defence in depth: code should not hand these to the logger at all.
 */
const REDACTED_FIELDS = ['data', 'value', 'plaintext', 'token', 'jwt', 'authorization', 'rootKey', 'key', 'share', 'shares', 'pin'];

function redact(): bunyan.Serializers {
  const s: bunyan.Serializers = { err: bunyan.stdSerializers.err };
  for (const f of REDACTED_FIELDS) s[f] = () => '[redacted]';
  return s;
}

const guarded = new WeakSet<Writable>();

/**
 * Where log lines go. A line that cannot be written (a full disk, a closed
 * pipe) is dropped and never crashes the process: the server keeps serving,
 * and the audit trail, not this log, is what fails closed. When lines can be
 * written again, a first one says how many were lost.
 */
export class LogSink {
  private dropped = 0;
  private lastError = '';
  /** Part of a line reached the file before it filled up. */
  private torn = false;
  /** A file or device behind the stream: written here, since Node's stream for it dies with its first error. */
  private readonly fd: number | null;

  constructor(
    private readonly stream: Writable,
    private readonly name: string,
  ) {
    this.fd = syncFd(stream);
    // A stream that fails is done (a closed pipe): its 'error' is noted, never thrown. One listener per stream, however many loggers share it.
    if (!guarded.has(stream)) {
      guarded.add(stream);
      stream.on('error', (err: NodeJS.ErrnoException) => this.drop(err));
    }
  }

  write(line: string): void {
    if (this.dropped > 0) {
      if (!this.put(this.droppedLine())) return this.drop(null);
      this.dropped = 0;
    }
    if (!this.put(line)) this.drop(null);
  }

  private put(line: string): boolean {
    if (this.fd === null) {
      if (this.stream.destroyed || this.stream.writableEnded) return false;
      this.stream.write(line);
      return true;
    }
    const buf = Buffer.from(this.torn ? `\n${line}` : line);
    let off = 0;
    try {
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
      this.torn = false;
      return true;
    } catch (err) {
      // The fragment stays: the next line that fits starts on a line of its own.
      this.torn ||= off > 0;
      this.lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return false;
    }
  }

  private drop(err: NodeJS.ErrnoException | null): void {
    this.dropped++;
    if (err) this.lastError = err.code ?? err.message;
  }

  private droppedLine(): string {
    const n = this.dropped;
    const msg = `${n} log line(s) could not be written (${this.lastError})`;
    return `${JSON.stringify({ name: this.name, hostname: os.hostname(), pid: process.pid, level: 40, dropped: n, reason: this.lastError, msg, time: new Date().toISOString(), v: 0 })}\n`;
  }
}

/** The fd of a stream Node writes synchronously (a file, or a device such as /dev/null; a terminal is left to its stream). */
function syncFd(stream: Writable): number | null {
  const fd = (stream as { fd?: unknown }).fd;
  if (typeof fd !== 'number') return null;
  try {
    const st = fs.fstatSync(fd);
    return st.isFile() || (st.isCharacterDevice() && !tty.isatty(fd)) ? fd : null;
  } catch {
    return null;
  }
}

export interface LoggerOptions {
  name?: string;
  level?: bunyan.LogLevel;
  stream?: Writable;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? (process.env.NEXUS_LOG_LEVEL as bunyan.LogLevel | undefined) ?? 'info';
  const name = opts.name ?? 'nexus';
  return bunyan.createLogger({
    name,
    level,
    stream: new LogSink(opts.stream ?? process.stdout, name) as unknown as Writable,
    serializers: redact(),
  });
}

/** A logger that drops everything (tests and scripts that print their own output). */
export function silentLogger(): Logger {
  return bunyan.createLogger({ name: 'nexus', level: bunyan.FATAL + 1, streams: [] });
}
