import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { sealLine, splitLine, macOf } from '../../nexus/audit/chain.js';
import { serializeEntry } from '../../nexus/audit/trail.js';

describe('lean audit record', () => {
  it('is one flat line with the fields a bunyan record had, absent fields left out', () => {
    const line = serializeEntry({ port: 'oidc', action: 'read', path: 'a/b', decision: 'deny', status: 403, token_id: 't' }, new Date('2026-01-02T03:04:05.000Z'));
    const rec = JSON.parse(line) as Record<string, unknown>;
    expect(rec).to.deep.include({ name: 'nexus-audit', pid: process.pid, level: 30, port: 'oidc', action: 'read', path: 'a/b', decision: 'deny', status: 403, token_id: 't', msg: 'read', time: '2026-01-02T03:04:05.000Z', v: 0 });
    for (const absent of ['principal', 'version', 'object', 'phase', 'reason', 'request_id']) expect(rec).to.not.have.property(absent);
  });

  it('a record serialized in advance seals to the same line, MAC and all, as its object', () => {
    const key = randomBytes(32);
    const chain = { gen: 2, seq: 7, key: 'kcv1', prev: 'ab'.repeat(32) };
    const rec = { name: 'nexus-audit', action: 'read', path: 'x', status: 200 };
    const fromString = sealLine(JSON.stringify(rec), chain, key);
    const fromObject = sealLine(rec, chain, key);
    expect(fromString).to.deep.equal(fromObject);
    const parts = splitLine(fromString.line.trimEnd())!;
    expect(macOf(key, parts.body)).to.equal(parts.mac);
    expect(JSON.parse(fromString.line)).to.deep.include({ ...rec, ...chain });
    expect(sealLine({}, chain, key).line.startsWith('{"gen":2,')).to.equal(true);
  });
});
