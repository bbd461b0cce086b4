import fs from 'node:fs';
import type { Position } from './trail-tail.js';

/** What the forwarder keeps between runs: per chain, the last record it no longer needs to resend, for one receiver. */
export interface ForwardState {
  receiver: string;
  chains: Record<string, Position>;
}

/** The kept positions for `receiver`; none when the file is missing, unreadable or was kept for another receiver (which then gets everything). */
export function readForwardState(file: string, receiver: string): Record<string, Position> {
  try {
    const s = JSON.parse(fs.readFileSync(file, 'utf8')) as ForwardState;
    return s.receiver === receiver && s.chains && typeof s.chains === 'object' ? s.chains : {};
  } catch {
    return {};
  }
}

/** Replaces the file whole (a temporary file renamed over it): a crash leaves the old position or the new one, never half of one. */
export function writeForwardState(file: string, state: ForwardState): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
