import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { AuditKeys } from '../../nexus/audit/keys.js';
import { AuditTrail } from '../../nexus/audit/trail.js';
import { verifyChain } from '../../nexus/audit/verify.js';
import { silentLogger } from '../../nexus/log.js';
import { AuditAnchorRepo, AuditKeysRepo } from '../../nexus/storage/audit-repo.js';
import { openTestCore, tempDir } from '../helpers/env.js';

describe('audit trail files', () => {
  it('rotates by size and keeps one chain across files', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir);
    const file = path.join(dir, 'audit.jsonl');
    const keys = new AuditKeys(core.rootKey, new AuditKeysRepo(core.db).all());
    const anchor = new AuditAnchorRepo(core.db);
    core.audit.close();
    const trail = new AuditTrail({ file, rootKey: core.rootKey, keys, anchor, log: silentLogger(), writer: { maxBytes: 1500 } });
    try {
      // One record per flush (rotation is checked per batch), then a batch of ten at once.
      for (let i = 0; i < 20; i++) expect(await trail.record({ port: 'mtls', action: 'read', path: `a/s${i}`, decision: 'allow', status: 200 })).to.equal(true);
      const batch = [];
      for (let i = 20; i < 30; i++) batch.push(trail.record({ port: 'mtls', action: 'read', path: `a/s${i}`, decision: 'allow', status: 200 }));
      expect(await Promise.all(batch)).to.deep.equal(Array(10).fill(true));
      const rotated = fs.readdirSync(dir).filter((f) => /^audit\.jsonl\.\d+$/.test(f));
      expect(rotated.length).to.be.greaterThan(1);
      expect(verifyChain(file, keys, anchor.get('server'))).to.deep.equal({ ok: true, records: 30, problems: [] });
      // Tampering inside a rotated file is found there.
      const first = path.join(dir, 'audit.jsonl.1');
      fs.writeFileSync(first, fs.readFileSync(first, 'utf8').replace('a/s1"', 'a/sX"'));
      const r = verifyChain(file, keys, anchor.get('server'));
      expect(r.ok).to.equal(false);
      expect(r.problems[0]).to.match(/^audit\.jsonl\.1:2: record was altered/);
    } finally {
      trail.close();
      core.close();
    }
  });
});
