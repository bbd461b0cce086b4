import fs from 'node:fs';
import path from 'node:path';
import type { ChainHead } from '../storage/audit-repo.js';
import { compareToAnchor, GENESIS, macOf, missingRange, rotatedFiles, splitLine, type Chained } from './chain.js';
import type { AuditKeys } from './keys.js';

export interface VerifyResult {
  ok: boolean;
  records: number;
  /** "file:line: why", first problem first; verification goes on after each. */
  problems: string[];
}

/** MACs of recent records, so a record that chains from one already continued is named a fork. */
const FORK_WINDOW = 100_000;

/**
 * Walks every file of one chain in order: each record's MAC under the key it
 * names, its link to the record before, then the end of the chain against
 * the anchor. It does not stop at the first problem: after a broken link it
 * re-synchronises on the record and keeps checking.
 */
export function verifyChain(file: string, keys: AuditKeys, anchor: ChainHead | null): VerifyResult {
  const sources = [...rotatedFiles(file), file]
    .filter((f) => fs.existsSync(f))
    .map((f) => {
      const lines = fs.readFileSync(f, 'utf8').split('\n');
      // Every record ends with a newline: text after the last one is a write that never completed.
      const torn = f === file && lines[lines.length - 1] !== '';
      if (lines[lines.length - 1] === '') lines.pop();
      return { name: path.basename(f), lines, torn };
    });
  return verifySources(sources, path.basename(file), keys, anchor);
}

/** One chain given as lines (a copy rebuilt from a receiver's file, say), checked as verifyChain checks files. */
export function verifyLines(name: string, lines: string[], keys: AuditKeys, anchor: ChainHead | null): VerifyResult {
  return verifySources([{ name, lines, torn: false }], name, keys, anchor);
}

function verifySources(sources: Array<{ name: string; lines: string[]; torn: boolean }>, endName: string, keys: AuditKeys, anchor: ChainHead | null): VerifyResult {
  const problems: string[] = [];
  let head: ChainHead | null = null;
  let records = 0;
  const seen = new Map<string, string>();
  // Where the kept trail starts when retention deleted what came before, and what the deletions say they removed.
  let start: { where: string; problem: string; head: ChainHead } | null = null;
  const deleted: ChainHead[] = [];
  for (const { name, lines, torn } of sources) {
    for (let i = 0; i < lines.length; i++) {
      const where = `${name}:${i + 1}`;
      const parts = splitLine(lines[i]!);
      let rec: Chained | null = null;
      try {
        rec = parts ? (JSON.parse(parts.body) as Chained) : null;
      } catch {
        rec = null;
      }
      if (!parts || !rec || !Number.isInteger(rec.gen) || !Number.isInteger(rec.seq) || typeof rec.key !== 'string' || typeof rec.prev !== 'string') {
        problems.push(torn && i === lines.length - 1 ? `${where}: a torn last record (a write that never completed; the next start cuts it off if the records before it match the anchor)` : `${where}: not an audit record`);
        continue;
      }
      records++;
      const key = keys.get(rec.key);
      if (!key) problems.push(`${where}: made with an unknown key (root key check value ${rec.key})`);
      else if (macOf(key, parts.body) !== parts.mac) problems.push(`${where}: record was altered (MAC mismatch)`);
      const link = linkProblem(head, rec, seen);
      if (link && head === null) start = { where, problem: `${where}: ${link}`, head: { generation: rec.gen, count: rec.seq - 1, mac: rec.prev, kcv: rec.key } };
      else if (link) problems.push(`${where}: ${link}`);
      const through = (rec as { through?: ChainHead | null }).through;
      if (rec.action === 'audit.retention' && through) deleted.push(through);
      if (rec.action === 'audit.break') problems.push(`${where}: ${rec.reason ?? 'break recorded'}`);
      if (seen.size >= FORK_WINDOW) seen.delete(seen.keys().next().value!);
      seen.set(rec.prev, where);
      head = { generation: rec.gen, count: rec.seq, mac: parts.mac, kcv: rec.key };
    }
  }
  // A trail that starts mid-chain is whole only if a recorded deletion ended exactly where it picks up.
  const s = start as { problem: string; head: ChainHead } | null;
  if (s && !deleted.some((d) => d.generation === s.head.generation && d.count === s.head.count && d.mac === s.head.mac)) problems.unshift(s.problem);
  const end = compareToAnchor(head, anchor, true);
  if (end) problems.push(`${endName}: ${end}`);
  return { ok: problems.length === 0, records, problems };
}

function linkProblem(head: ChainHead | null, rec: Chained, seen: Map<string, string>): string | null {
  const gen = head?.generation ?? 0;
  if (rec.gen === gen) {
    if (rec.seq === head!.count + 1 && rec.prev === head!.mac) return null;
    const sibling = seen.get(rec.prev);
    if (sibling) return `fork: chains from the same record as ${sibling} (two writers, or a record replaced)`;
    if (rec.seq > head!.count + 1) return `chain broken: records ${missingRange(head!.count + 1, rec.seq - 1)} of generation ${gen} are missing`;
    return 'chain broken (a record before it was removed or reordered)';
  }
  if (rec.gen < gen) return `a record of generation ${rec.gen} after generation ${gen} (an older copy spliced in)`;
  // A new generation opens with a break record (which verify reports itself) or, first of all, at genesis.
  if (rec.action === 'audit.break' && rec.seq === 1) return null;
  if (head === null && rec.gen === 1 && rec.seq === 1 && rec.prev === GENESIS) return null;
  if (head === null) return `the trail starts at record ${rec.seq} of generation ${rec.gen}: what came before is missing`;
  return `generation ${rec.gen} begins without a break record`;
}
