import fs from 'node:fs';
import path from 'node:path';
import { chainFieldsOf, parseForwarded } from './syslog-format.js';

/** One record of a receiver's copy, with where it was found. */
export interface CopyRecord {
  gen: number;
  seq: number;
  mac: string;
  /** The trail line as Nexus wrote it (without its newline). */
  line: string;
  /** `file:line` in the receiver's file. */
  where: string;
}

export interface ForwardedCopy {
  /** The chain's records in the order received, repeats dropped. */
  records: CopyRecord[];
  /** Records received more than once (at-least-once delivery resends after a lost connection). */
  repeats: number;
  /** Whether the file held syslog messages (else it was read as a plain trail copy). */
  syslog: boolean;
}

/**
 * The records of one chain in a receiver's file: syslog lines carrying Nexus
 * records (rsyslog writing `%rawmsg%`), or a plain copy of trail lines. A
 * record seen again with the same MAC is a repeat and is dropped; one with
 * the same number but another MAC is kept, so verify names the fork.
 */
export function readForwardedCopy(file: string, chain: string): ForwardedCopy {
  const name = path.basename(file);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const seen = new Map<string, string[]>();
  const records: CopyRecord[] = [];
  let repeats = 0;
  let syslog = false;
  const plain: CopyRecord[] = [];
  lines.forEach((text, i) => {
    if (text === '') return;
    const where = `${name}:${i + 1}`;
    const fwd = parseForwarded(text);
    if (fwd) {
      syslog = true;
      if (fwd.chain !== chain) return;
      const key = `${fwd.gen}:${fwd.seq}`;
      const macs = seen.get(key) ?? [];
      if (macs.includes(fwd.mac)) {
        repeats++;
        return;
      }
      seen.set(key, [...macs, fwd.mac]);
      records.push({ gen: fwd.gen, seq: fwd.seq, mac: fwd.mac, line: fwd.line, where });
      return;
    }
    const f = chainFieldsOf(text);
    plain.push(f ? { ...f, line: text, where } : { gen: -1, seq: -1, mac: '', line: text, where });
  });
  return syslog ? { records, repeats, syslog } : { records: plain, repeats: 0, syslog };
}
