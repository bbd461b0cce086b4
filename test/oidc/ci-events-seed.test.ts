import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { silentLogger } from '../../nexus/log.js';
import { startServer } from '../../nexus/server.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { githubHeaders, raw, workflowRun } from '../helpers/ci-events.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { call } from '../helpers/server.js';

// An issuer declared in NEXUS_CONFIG opts in the same way: its webhook_secret
// in the file is sealed into the database at start (never kept in the
// issuer's definition); removed from the file, removed at the next start.
describe('declarative config: an issuer\'s webhook_secret', function () {
  this.timeout(60_000);
  let idp: TestIdp;
  before(async () => {
    idp = await startIdp();
  });
  after(() => idp.stop());

  it('the file\'s secret authenticates events; without it in the file, events are refused after a restart; it is in no audit record', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'nexus.yaml');
    const SECRET = 'seeded-webhook-secret-Zr8Kw2';
    const issuer = { issuer: idp.url, audiences: ['nexus'], algorithms: ['RS256'], tenant_claims: ['repository'] };
    const env = () => testEnv(path.join(dir, 'data'), { NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: '127.0.0.1:0' });
    const deliver = async () => {
      const plugin = new OidcPlugin();
      const server = await startServer(loadConfig(env()), silentLogger(), { plugins: [plugin] });
      try {
        const ca = fs.readFileSync(path.join(dir, 'data', 'pki', 'ca.crt'), 'utf8');
        const body = raw(workflowRun('org/repo', 1, 1));
        return await call(plugin.addresses().oidc!.port, { ca }, 'POST', '/v1/ci/events/github?issuer=gh', body, { headers: githubHeaders(SECRET, body) });
      } finally {
        await server.stop();
      }
    };
    fs.writeFileSync(file, JSON.stringify({ oidc: { issuers: { gh: { ...issuer, webhook_secret: SECRET } } } }));
    const accepted = await deliver();
    expect(accepted.status, accepted.text).to.equal(200);
    expect(accepted.body).to.deep.include({ outcome: 'revoked', revoked: 0 });
    fs.writeFileSync(file, JSON.stringify({ oidc: { issuers: { gh: issuer } } }));
    expect((await deliver()).status).to.equal(401);
    expect(fs.readFileSync(path.join(dir, 'data', 'audit.jsonl'), 'utf8')).to.not.include(SECRET);
  });
});
