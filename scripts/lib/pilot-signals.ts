// `pilot signals`: the access signals Nexus raised (GET /v1/signals).
import type { Command } from 'commander';
import type { Signal } from '../../nexus/signals/types.js';
import { UsageError, type PilotIo } from './pilot-conn.js';

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--since`: 90s, 15m, 1h, 7d, plain seconds, or an RFC 3339 time; as the server's `since` (seconds or the time). */
export function sinceParam(raw: string): string {
  const m = /^(\d{1,9})([smhd]?)$/.exec(raw);
  if (m) return String(Number(m[1]) * UNIT_S[m[2] || 's']!);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(raw) && !Number.isNaN(Date.parse(raw))) return raw;
  throw new UsageError(`--since takes a duration (90s, 15m, 1h, 7d) or an RFC 3339 time, got ${JSON.stringify(raw)}`);
}

// C0 and C1 controls, DEL, and the bidirectional overrides/isolates that reorder what a terminal shows.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A field as a terminal may show it: signal principals and paths carry claim
 * values from any token the issuer signed, matched by a role or not, so an
 * escape sequence or a newline there must not repaint the screen or forge a line.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** One line per signal, oldest first. */
export function formatSignals(signals: Signal[]): string {
  if (!signals.length) return '(no signals)';
  return signals.map((s) => [s.at, s.signal, s.port, s.principal, s.address || '-', s.path ?? '-', s.why].map(printable).join('  ')).join('\n');
}

export function addSignalsCommand(program: Command, io: PilotIo): void {
  program
    .command('signals')
    .description('recent access signals: new paths, denial bursts, read spikes, replayed tokens, configuration changes, audit trouble (admin or metrics)')
    .option('--since <when>', 'a duration (90s, 15m, 1h, 7d) or an RFC 3339 time', '1h')
    .action(async (opts: { since: string }, cmd: Command) => {
      const res = await io.get<{ signals: Signal[] }>(cmd, 'GET', `/v1/signals?since=${encodeURIComponent(sinceParam(opts.since))}`);
      io.out(cmd, res, () => formatSignals(res.signals));
    });
}
