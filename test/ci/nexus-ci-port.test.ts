import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const BIN = path.join(ROOT, 'scripts/ci/dist/nexus-ci.mjs');

describe('nexus-ci pointed at the mTLS port says which port it reached and which it needs', function () {
  this.timeout(30_000);
  let t: TestServer;
  let caFile: string;

  before(async () => {
    t = await startTestServer();
    caFile = path.join(tempDir('nexus-ci-port'), 'ca.crt');
    fs.writeFileSync(caFile, t.caPem);
  });
  after(() => t?.stop());

  it('one line naming the mTLS port, the OIDC port and NEXUS_URL, not an OpenSSL alert', async () => {
    const url = `https://127.0.0.1:${t.port}`;
    const r = await runNode([BIN, '--jwt-env', 'JWT', '--url', url, '--ca', caFile, '--secret', 'ci/app/db password | DB_PASSWORD', '--format', 'json', '--out', path.join(path.dirname(caFile), 'out.json')], { JWT: 'a.b.c' });
    expect(r.code).to.equal(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.include(url).and.include("Nexus's mTLS port").and.include('OIDC port').and.include('NEXUS_URL').and.include('8554');
    expect(lines[0]).to.not.match(/alert|SSL routines/i);
  });
});
