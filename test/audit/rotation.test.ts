import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { AuditTrail, verifyTrail } from '../../nexus/audit/trail.js';
import { tempDir } from '../helpers/env.js';

describe('audit trail files', () => {
  it('rotates by size and keeps one chain across files', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    const trail = new AuditTrail(file, Buffer.alloc(32, 1), 1500);
    // One record per flush (rotation is checked per batch), then a batch of ten at once.
    for (let i = 0; i < 20; i++) expect(await trail.record({ port: 'mtls', action: 'read', path: `a/s${i}`, decision: 'allow', status: 200 })).to.equal(true);
    const batch = [];
    for (let i = 20; i < 30; i++) batch.push(trail.record({ port: 'mtls', action: 'read', path: `a/s${i}`, decision: 'allow', status: 200 }));
    expect(await Promise.all(batch)).to.deep.equal(Array(10).fill(true));
    const rotated = fs.readdirSync(dir).filter((f) => /^audit\.jsonl\.\d+$/.test(f));
    expect(rotated.length).to.be.greaterThan(1);
    expect(verifyTrail(file)).to.deep.equal({ ok: true, records: 30 });
    // A second writer (an admin script) appending to the same file keeps the chain.
    await new AuditTrail(file, null).record({ port: 'script', action: 'nexus-backup x', decision: 'allow', status: 0 });
    await trail.record({ port: 'mtls', action: 'read', decision: 'allow', status: 200 });
    expect(verifyTrail(file)).to.deep.equal({ ok: true, records: 32 });
    // Tampering inside a rotated file is found there.
    const first = path.join(dir, 'audit.jsonl.1');
    fs.writeFileSync(first, fs.readFileSync(first, 'utf8').replace('a/s1"', 'a/sX"'));
    const r = verifyTrail(file);
    expect(r.ok).to.equal(false);
    expect(r.broken).to.match(/^audit\.jsonl\.1:2: record was altered/);
  });
});
