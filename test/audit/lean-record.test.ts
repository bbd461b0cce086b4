import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { sealLine, splitLine, macOf } from '../../nexus/audit/chain.js';
import os from 'node:os';
import { serializeEntry, type AuditEntry } from '../../nexus/audit/trail.js';

describe('lean audit record', () => {
  it('is one flat line with the fields a bunyan record had, absent fields left out', () => {
    const line = serializeEntry({ port: 'oidc', action: 'read', path: 'a/b', decision: 'deny', status: 403, token_id: 't' }, new Date('2026-01-02T03:04:05.000Z'));
    const rec = JSON.parse(line) as Record<string, unknown>;
    expect(rec).to.deep.include({ name: 'nexus-audit', pid: process.pid, level: 30, port: 'oidc', action: 'read', path: 'a/b', decision: 'deny', status: 403, token_id: 't', msg: 'read', time: '2026-01-02T03:04:05.000Z', v: 0 });
    for (const absent of ['principal', 'version', 'object', 'phase', 'reason', 'request_id']) expect(rec).to.not.have.property(absent);
  });

  it('is, byte for byte, what JSON.stringify makes of the same record, whichever fields are present', () => {
    // The record as an object literal in the trail's field order: what every earlier trail line was made from.
    const reference = (e: AuditEntry, now: Date, replica?: string) =>
      JSON.stringify({
        name: 'nexus-audit', replica: replica || undefined, hostname: os.hostname(), pid: process.pid, level: 30,
        request_id: e.request_id, port: e.port, principal: e.principal, action: e.action, method: e.method, route: e.route, path: e.path,
        version: e.version, versions: e.versions, object: e.object, phase: e.phase, decision: e.decision, status: e.status, reason: e.reason,
        token_id: e.token_id, lease: e.lease, kind: e.kind, signal: e.signal, address: e.address, why: e.why, revoked: e.revoked,
        msg: e.action, time: now.toISOString(), v: 0,
      });
    const odd = 'a "quoted" \\ path\n\u0001 é \u2028';
    const optional: Partial<AuditEntry> = {
      request_id: 'r-1', principal: { issuer: 'https://idp', subject: odd, roles: ['a', 'b'], via: 'jwt' }, method: 'GET', route: '/v1/secrets/{path}', path: odd,
      version: 3, versions: [1, 2], object: { kind: 'policy', name: odd, digest: 'sha256:00' }, phase: 'intent', status: 403, reason: odd, token_id: 'abc',
      lease: { id: 'l', role: 'r', connection: 'c', username: 'u', caller: 'x', expires_at: '2026-01-01T00:00:00.000Z', attempts: 2 },
      kind: 'signal', signal: 'burst', address: '::1', why: odd, revoked: 0,
    };
    const keys = Object.keys(optional) as (keyof AuditEntry)[];
    const now = new Date('2026-12-06T01:02:03.456Z');
    let seed = 7;
    const coin = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) & 1) === 1;
    for (let round = 0; round < 200; round++) {
      const e: AuditEntry = { port: round % 2 ? 'oidc' : 'mtls', action: round % 3 ? 'read' : odd, decision: 'allow' };
      for (const k of keys) if (coin()) (e as unknown as Record<string, unknown>)[k] = optional[k];
      const replica = round % 4 === 0 ? 'replica-1' : undefined;
      expect(serializeEntry(e, now, replica)).to.equal(reference(e, now, replica));
      // The same principal again (its JSON is kept): still the same line.
      expect(serializeEntry(e, now, replica)).to.equal(reference(e, now, replica));
    }
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
