import { StartupError } from '../../nexus/errors.js';
import type { InitResult } from '../../nexus/seal/init.js';
import type { ShareReader } from '../../nexus/seal/migrate.js';
import { readShare } from './pilot-operator.js';

/** Shares go to stdout once; nothing else keeps them. */
export function printShares(r: InitResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ shares: r.shares, threshold: r.threshold, ...(r.kind === 'recovery' ? { recovery: true } : {}), root_kcv: r.kcv }));
    return;
  }
  const what = r.kind === 'recovery' ? 'Recovery share' : 'Unseal share';
  r.shares.forEach((s, i) => console.log(`${what} ${i + 1}: ${s}`));
  console.log('');
  if (r.kind === 'recovery') {
    console.log(`The token unseals Nexus at start. These ${r.shares.length} recovery shares (any ${r.threshold}) never unseal; they only rebuild the root key onto a new token (nexus-operator recover).`);
  } else {
    console.log(`Nexus starts sealed. Any ${r.threshold} of these ${r.shares.length} shares unseal it (pilot operator unseal).`);
  }
  console.log('They are printed once and stored nowhere: give each to a different person now.');
}

/** Shares from a prompt without echo (one per share), or one per line on stdin. */
export const readShares: ShareReader = async (what, threshold) => {
  if (process.stdin.isTTY) {
    const out: string[] = [];
    for (let i = 1; i <= threshold; i++) {
      process.stderr.write(`${what} share ${i} of ${threshold}: `);
      out.push(await readShare());
    }
    return out;
  }
  const text = await new Promise<string>((resolve, reject) => {
    let t = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (t += d));
    process.stdin.on('error', reject);
    process.stdin.on('end', () => resolve(t));
  });
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length < threshold) throw new StartupError(`${threshold} ${what} shares are needed (one per line on stdin), got ${lines.length}`);
  return lines;
};
