import fs from 'node:fs';
import path from 'node:path';
import { missingRange, rotatedFiles } from './chain.js';
import type { CopyRecord } from './forwarded-copy.js';
import { chainFieldsOf } from './syslog-format.js';

export interface WitnessResult {
  ok: boolean;
  /** Records the witness holds that the local trail covers (or should). */
  compared: number;
  /** Local records past the witness's last one (forwarding lag, not a problem). */
  ahead: number;
  /** The first problem first: it names the first record the local trail lacks or holds differently. */
  problems: string[];
}

const before = (a: { gen: number; seq: number }, b: { gen: number; seq: number }) => a.gen < b.gen || (a.gen === b.gen && a.seq < b.seq);

/**
 * The local trail against a receiver's copy, the outside witness. The anchor
 * lives beside the trail, so someone who can write both can cut the trail and
 * move the anchor to match; the receiver's copy is out of their reach. Every
 * record the witness holds must be in the local trail, identical (same MAC);
 * records the witness holds from before the local trail's first one (deleted
 * by retention) are not asked for.
 */
export function compareWithWitness(file: string, witness: CopyRecord[]): WitnessResult {
  const local = new Map<string, { mac: string; where: string }>();
  let first: { gen: number; seq: number } | null = null;
  let last: { gen: number; seq: number } | null = null;
  for (const f of [...rotatedFiles(file), file]) {
    if (!fs.existsSync(f)) continue;
    fs.readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const c = chainFieldsOf(line);
        if (!c) return;
        first ??= c;
        if (!last || before(last, c)) last = c;
        local.set(`${c.gen}:${c.seq}`, { mac: c.mac, where: `${path.basename(f)}:${i + 1}` });
      });
  }
  const missing: CopyRecord[] = [];
  const differing: Array<{ rec: CopyRecord; where: string }> = [];
  const problems: string[] = [];
  let compared = 0;
  let newest: { gen: number; seq: number } | null = null;
  for (const rec of witness) {
    if (rec.gen < 0) continue;
    if (!newest || before(newest, rec)) newest = rec;
    if (first && before(rec, first)) continue;
    compared++;
    const mine = local.get(`${rec.gen}:${rec.seq}`);
    if (!mine) {
      missing.push(rec);
      if (problems.length === 0) problems.push(`record ${rec.seq} of generation ${rec.gen} is missing from the local trail; the witness holds it (${rec.where})`);
    } else if (mine.mac !== rec.mac) {
      differing.push({ rec, where: mine.where });
      if (problems.length === 0) problems.push(`record ${rec.seq} of generation ${rec.gen} differs: ${mine.where} is not the record the witness holds (${rec.where})`);
    }
  }
  if (missing.length > 0) {
    const runs = runsOf(missing);
    problems.push(`${missing.length} record(s) the witness holds are missing from the local trail: ${runs}${last ? ` (the local trail ends at record ${(last as { seq: number }).seq} of generation ${(last as { gen: number }).gen})` : ' (the local trail is empty)'}`);
  }
  if (differing.length > 0) problems.push(`${differing.length} record(s) differ from the witness's: ${runsOf(differing.map((d) => d.rec))}`);
  let ahead = 0;
  if (newest) for (const k of local.keys()) {
    const [gen, seq] = k.split(':').map(Number) as [number, number];
    if (before(newest, { gen, seq })) ahead++;
  }
  return { ok: problems.length === 0, compared, ahead, problems };
}

/** "991-1000 of generation 1, 3 of generation 2": consecutive records run together. */
function runsOf(recs: Array<{ gen: number; seq: number }>): string {
  const out: string[] = [];
  let start = recs[0]!;
  let prev = recs[0]!;
  for (const r of [...recs.slice(1), null]) {
    if (r && r.gen === prev.gen && r.seq === prev.seq + 1) {
      prev = r;
      continue;
    }
    out.push(`${missingRange(start.seq, prev.seq)} of generation ${start.gen}`);
    if (r) start = prev = r;
  }
  return out.slice(0, 10).join(', ') + (out.length > 10 ? `, and ${out.length - 10} more run(s)` : '');
}
