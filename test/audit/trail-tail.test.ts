import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { AuditKeys } from '../../nexus/audit/keys.js';
import { AuditTrail } from '../../nexus/audit/trail.js';
import { TrailTail, type TailRecord } from '../../nexus/audit/trail-tail.js';
import { silentLogger } from '../../nexus/log.js';
import { AuditAnchorRepo, AuditKeysRepo } from '../../nexus/storage/audit-repo.js';
import { openTestCore, tempDir } from '../helpers/env.js';

/** Everything the tail returns until it returns nothing. */
async function drain(tail: TrailTail): Promise<TailRecord[]> {
  const out: TailRecord[] = [];
  for (let got = await tail.read(512); got.length > 0; got = await tail.read(512)) out.push(...got);
  return out;
}

describe('the forwarder tails the trail across rotated files, from a position', () => {
  it('reads every record once, in order, while the trail rotates under it; resumes after any record; never past the anchored head', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir);
    const file = path.join(dir, 'audit.jsonl');
    const keys = new AuditKeys(core.rootKey, new AuditKeysRepo(core.db).all());
    core.audit.close();
    const trail = new AuditTrail({ file, rootKey: core.rootKey, keys, anchor: new AuditAnchorRepo(core.db), log: silentLogger(), writer: { maxBytes: 1500 } });
    const record = async (n: number) => {
      for (let i = 0; i < n; i++) expect(await trail.record({ port: 'mtls', action: 'read', path: `a/s${i}`, decision: 'allow', status: 200 })).to.equal(true);
    };
    try {
      let head = trail.head();
      const tail = new TrailTail(file, null, () => head);
      await record(7);
      const seen = await drain(tail);
      expect(seen).to.deep.equal([], 'nothing past the head it was given');
      head = trail.head();
      seen.push(...(await drain(tail)));
      for (let round = 0; round < 4; round++) {
        await record(6);
        head = trail.head();
        seen.push(...(await drain(tail)));
      }
      expect(fs.readdirSync(dir).filter((f) => /^audit\.jsonl\.\d+$/.test(f)).length).to.be.greaterThan(3);
      expect(seen.map((r) => r.seq)).to.deep.equal(Array.from({ length: 31 }, (_, i) => i + 1));
      expect(seen.map((r) => `${r.line}\n`).join('')).to.equal(
        [...fs.readdirSync(dir).filter((f) => /^audit\.jsonl\.\d+$/.test(f)).sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1))), 'audit.jsonl']
          .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
          .join(''),
      );
      // From a position in an old rotated file: the rest, in order.
      const resumed = new TrailTail(file, seen[4]!, () => head);
      expect((await drain(resumed)).map((r) => r.seq)).to.deep.equal(Array.from({ length: 26 }, (_, i) => i + 6));
      await tail.seek(seen[29]!);
      expect((await drain(tail)).map((r) => r.seq)).to.deep.equal([31]);
      await resumed.close();
      await tail.close();
    } finally {
      trail.close();
      core.close();
    }
  });
});
