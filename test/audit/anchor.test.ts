import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../nexus/log.js';
import { startServer, type RunningServer } from '../../nexus/server.js';
import { runBin, tempDir, testConfig, testEnv } from '../helpers/env.js';
import { call, type ClientCreds } from '../helpers/server.js';

interface Running {
  server: RunningServer;
  port: number;
  admin: ClientCreds;
  logs(): string;
}

/** A server on an existing (or new) data dir, its log captured. */
async function startOn(dir: string): Promise<Running> {
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d: Buffer) => (logged += d.toString()));
  const server = await startServer(testConfig(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off' }), createLogger({ level: 'info', stream: out }), { plugins: [] });
  const pki = path.join(dir, 'pki');
  const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
  return { server, port: server.mtls.address().port, admin: { ca: read('ca.crt'), cert: read('pilot.crt'), key: read('pilot.key') }, logs: () => logged };
}

async function traffic(r: Running, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await call(r.port, r.admin, 'PUT', `/v1/secrets/app/s${i}`, { data: { v: String(i) } })).status).to.be.oneOf([200, 201]);
}

const lines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n');

/** What an attacker without the root key can do: drop records and recompute a plain SHA-256 chain over the rest. */
function rechainWithPlainHashes(all: string[]): string[] {
  let prev = '0'.repeat(64);
  return all.map((line) => {
    const rec = JSON.parse(line) as Record<string, unknown>;
    const field = Object.keys(rec).at(-1)!;
    delete rec[field];
    const body = JSON.stringify({ ...rec, prev });
    prev = createHash('sha256').update(body).digest('hex');
    return `${body.slice(0, -1)},"${field}":"${prev}"}`;
  });
}

describe('audit trail: keyed MAC chain anchored in the database', function () {
  this.timeout(120_000);

  it('a record deleted and the chain recomputed without the root key is caught', async () => {
    const dir = tempDir();
    const r = await startOn(dir);
    await traffic(r, 5);
    await r.server.stop(2000);
    const file = path.join(dir, 'audit.jsonl');
    const all = lines(file);
    const forged = rechainWithPlainHashes([...all.slice(0, 2), ...all.slice(3)]);
    fs.writeFileSync(file, `${forged.join('\n')}\n`);
    const v = await runBin('nexus-audit', ['verify'], testEnv(dir));
    expect(v.code).to.equal(1);
    expect(v.stderr).to.match(/audit\.jsonl:1: record was altered \(MAC mismatch\)/);
  });

  it('verify names what is missing: the last records cut, the file emptied, an older copy swapped in', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    const r = await startOn(dir);
    await traffic(r, 4);
    await new Promise((res) => setTimeout(res, 50));
    const older = fs.readFileSync(file, 'utf8');
    const olderCount = older.trim().split('\n').length;
    await traffic(r, 6);
    await r.server.stop(2000);
    const full = fs.readFileSync(file, 'utf8');
    const n = full.trim().split('\n').length;
    const ok = await runBin('nexus-audit', ['verify'], testEnv(dir));
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(new RegExp(`${n} record\\(s\\)`));

    const verifyWith = async (text: string) => {
      fs.writeFileSync(file, text);
      const v = await runBin('nexus-audit', ['verify'], testEnv(dir));
      fs.writeFileSync(file, full);
      expect(v.code).to.equal(1);
      return v.stderr;
    };
    expect(await verifyWith(`${full.trim().split('\n').slice(0, n - 3).join('\n')}\n`)).to.match(new RegExp(`records ${n - 2}-${n} of generation 1 are missing \\(cut\\)`));
    expect(await verifyWith('')).to.match(new RegExp(`the trail is empty, but the anchor records ${n} record\\(s\\) of generation 1`));
    expect(await verifyWith(older)).to.match(new RegExp(`records ${olderCount + 1}-${n} of generation 1 are missing`));
  });

  it('on start, a trail that does not match its anchor is reported loudly and a new segment records the break', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'audit.jsonl');
    const r1 = await startOn(dir);
    await traffic(r1, 5);
    await r1.server.stop(2000);
    const n = lines(file).length;
    fs.writeFileSync(file, `${lines(file).slice(0, n - 2).join('\n')}\n`);

    const r2 = await startOn(dir);
    try {
      expect(r2.logs()).to.match(/"level":50.*audit trail does not match its anchor/);
      const ready = await call(r2.port, r2.admin, 'GET', '/readyz');
      expect(ready.body.audit).to.deep.include({ chain: 'broken' });
      expect(ready.body.audit.detail).to.match(new RegExp(`records ${n - 1}-${n} of generation 1 are missing`));
      const metrics = await call(r2.port, r2.admin, 'GET', '/metrics');
      expect(metrics.text).to.match(/nexus_audit_chain_breaks_total 1/);
    } finally {
      await r2.server.stop(2000);
    }
    // The cut file is kept aside; the new segment opens with a record of the break.
    const first = JSON.parse(lines(file)[0]!) as Record<string, unknown>;
    expect(first).to.deep.include({ action: 'audit.break', gen: 2, seq: 1 });
    expect(first.reason).to.match(new RegExp(`records ${n - 1}-${n} of generation 1 are missing`));
    expect(fs.readdirSync(dir).filter((f) => /^audit\.jsonl\.\d+$/.test(f))).to.have.length(1);
    const v = await runBin('nexus-audit', ['verify'], testEnv(dir));
    expect(v.code).to.equal(1);
    expect(v.stderr).to.match(/audit\.jsonl:1: break recorded at start/);
    // Nothing else is wrong: the new segment itself verifies and matches the anchor.
    expect(v.stderr.trim().split('\n').filter((l) => /broken at/.test(l)), v.stderr).to.have.length(1);
  });

  it('after root-key rotation the chain continues verifiably, and records the key change', async () => {
    const dir = tempDir();
    const r1 = await startOn(dir);
    await traffic(r1, 3);
    await r1.server.stop(2000);
    const rot = await runBin('nexus-rotate-key', [], testEnv(dir));
    expect(rot.code, rot.stderr).to.equal(0);
    const r2 = await startOn(dir);
    await traffic(r2, 3);
    await r2.server.stop(2000);
    const recs = lines(path.join(dir, 'audit.jsonl')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const change = recs.find((x) => x.action === 'audit.key_change');
    expect(change, 'a key-change record').to.not.equal(undefined);
    expect(change!.from_key).to.not.equal(change!.key);
    expect(new Set(recs.map((x) => x.key)).size).to.equal(2);
    const v = await runBin('nexus-audit', ['verify'], testEnv(dir));
    expect(v.code, v.stderr).to.equal(0);
  });
});
