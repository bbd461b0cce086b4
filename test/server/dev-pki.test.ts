import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runBin, testEnv } from '../helpers/env.js';
import { callOrRefused, type Res, type TestServer, startTestServer } from '../helpers/server.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY = 86400_000;

describe('dev PKI: extended key usages and lifetimes', function () {
  this.timeout(60_000);
  let t: TestServer;
  let pki: string;
  const read = (f: string) => fs.readFileSync(path.join(pki, f), 'utf8');
  before(async () => {
    t = await startTestServer();
    pki = path.join(t.dir, 'pki');
  });
  after(() => t.stop());

  it('the server certificate carries serverAuth only, and is refused as a client identity', async () => {
    expect(new X509Certificate(read('server.crt')).keyUsage).to.deep.equal([SERVER_AUTH]);
    const r = await callOrRefused(t.port, { ca: t.caPem, cert: read('server.crt'), key: read('server.key') }, 'GET', '/healthz');
    if (!(r instanceof Error)) expect((r as Res).status, (r as Res).text).to.equal(401);
  });

  it('the admin SVID carries clientAuth only and lives 30 days', async () => {
    const pilot = new X509Certificate(read('pilot.crt'));
    expect(pilot.keyUsage).to.deep.equal([CLIENT_AUTH]);
    const life = Date.parse(pilot.validTo) - Date.now();
    expect(life).to.be.within(29 * DAY, 30 * DAY + 60_000);
  });

  it('SVIDs with both EKUs (as SPIRE issues them), or without an EKU extension, are accepted', async () => {
    const both = await t.issue({ uris: ['spiffe://nexus.local/pilot'], eku: ['serverAuth', 'clientAuth'] });
    expect(new X509Certificate(both.cert).keyUsage).to.have.members([SERVER_AUTH, CLIENT_AUTH]);
    expect(((await callOrRefused(t.port, both, 'GET', '/healthz')) as Res).status).to.equal(200);
    const none = await t.issue({ uris: ['spiffe://nexus.local/pilot'], eku: [] });
    expect(((await callOrRefused(t.port, none, 'GET', '/healthz')) as Res).status).to.equal(200);
  });

  it('an SVID with serverAuth only is refused as a client identity', async () => {
    const serverOnly = await t.issue({ uris: ['spiffe://nexus.local/pilot'], eku: ['serverAuth'] });
    const r = await callOrRefused(t.port, serverOnly, 'GET', '/healthz');
    if (!(r instanceof Error)) expect((r as Res).status).to.equal(401);
  });

  it('nexus-pki issue renews the admin SVID in place, and issues clientAuth-only SVIDs', async () => {
    const before = new X509Certificate(read('pilot.crt'));
    const r = await runBin('nexus-pki', ['issue', '--spiffe-id', 'spiffe://nexus.local/pilot', '--out', pki, '--name', 'pilot'], testEnv(t.dir));
    expect(r.code, r.stderr).to.equal(0);
    const after = new X509Certificate(read('pilot.crt'));
    expect(after.serialNumber).to.not.equal(before.serialNumber);
    expect(after.keyUsage).to.deep.equal([CLIENT_AUTH]);
    expect(read('ca.crt')).to.equal(t.caPem);
    expect(fs.statSync(path.join(pki, 'pilot.key')).mode & 0o777).to.equal(0o600);
    const res = await callOrRefused(t.port, { ca: t.caPem, cert: read('pilot.crt'), key: read('pilot.key') }, 'GET', '/v1/policies');
    expect((res as Res).status).to.equal(200);
  });
});
