import bunyan from 'bunyan';
import type { Writable } from 'node:stream';

export type Logger = bunyan;

/**
 * Field names whose values are never written, whatever a caller passes.
 * A defence in depth: code should not hand these to the logger at all.
 */
const REDACTED_FIELDS = ['data', 'value', 'plaintext', 'token', 'jwt', 'authorization', 'rootKey', 'key'];

function redact(): bunyan.Serializers {
  const s: bunyan.Serializers = { err: bunyan.stdSerializers.err };
  for (const f of REDACTED_FIELDS) s[f] = () => '[redacted]';
  return s;
}

export interface LoggerOptions {
  name?: string;
  level?: bunyan.LogLevel;
  stream?: Writable;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? (process.env.NEXUS_LOG_LEVEL as bunyan.LogLevel | undefined) ?? 'info';
  return bunyan.createLogger({
    name: opts.name ?? 'nexus',
    level,
    stream: opts.stream ?? process.stdout,
    serializers: redact(),
  });
}

/** A logger that drops everything (tests and scripts that print their own output). */
export function silentLogger(): Logger {
  return bunyan.createLogger({ name: 'nexus', level: bunyan.FATAL + 1, streams: [] });
}
