import { expect } from 'chai';
import type Koa from 'koa';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { call, type TestServer, startTestServer } from '../helpers/server.js';

interface RouterLike {
  stack: Array<{ path: string; methods: string[] }>;
}

/** Every (METHOD path) the app's routers serve, in OpenAPI path syntax. */
function served(app: Koa): Set<string> {
  const out = new Set<string>();
  for (const mw of app.middleware as Array<{ router?: RouterLike }>) {
    for (const layer of mw.router?.stack ?? []) {
      for (const m of layer.methods) {
        // LIST (Vault's verb, beside GET ?list=true on the same paths) is no OpenAPI method: the GET documents it.
        if (m === 'HEAD' || m === 'LIST') continue;
        // An escaped colon (`/roles\\:test`) is a literal verb, not a parameter.
        const p = layer.path.replace(/\/$/, '').replace(/(?<!\\):([A-Za-z]+)/g, '{$1}').replace(/\\:/g, ':');
        out.add(`${m} ${p || '/'}`);
      }
    }
  }
  return out;
}

/** Every (METHOD path) the document lists; `{path}:verb` and `{path}` both map to the served wildcard route. */
function documented(doc: { paths: Record<string, Record<string, unknown>> }): Set<string> {
  const out = new Set<string>();
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) {
      const served = p.replace(/\/\{path\}/, '/{*rest}').replace(/(\{name\}|\{\*rest\}):[a-z-]+$/, '$1');
      out.add(`${m.toUpperCase()} ${served}`);
    }
  }
  return out;
}

describe('OpenAPI documents cover exactly the routes served', function () {
  this.timeout(30_000);
  let t: TestServer;
  let plugin: OidcPlugin;
  before(async () => {
    plugin = new OidcPlugin();
    t = await startTestServer({ NEXUS_OIDC_ADDR: '127.0.0.1:0' }, { plugins: [plugin] });
  });
  after(() => t.stop());

  for (const port of ['mtls', 'oidc'] as const) {
    it(`${port} port: every served route is documented and every documented route is served`, async () => {
      const res =
        port === 'mtls'
          ? await call(t.port, t.admin, 'GET', '/openapi.json')
          : await call(plugin.addresses().oidc!.port, { ca: t.caPem }, 'GET', '/openapi.json');
      expect(res.status).to.equal(200);
      expect(res.body.openapi).to.equal('3.1.0');
      const app = port === 'mtls' ? t.server.mtlsApp : plugin.app!;
      const s = served(app);
      const d = documented(res.body);
      expect([...s].filter((r) => !d.has(r)), 'served but undocumented').to.deep.equal([]);
      // The wildcard route is documented once per verb form; compare the other way on the collapsed form.
      expect([...d].filter((r) => !s.has(r)), 'documented but not served').to.deep.equal([]);
    });
  }

  it('documents the verb routes of the mTLS port explicitly', async () => {
    const doc = (await call(t.port, t.admin, 'GET', '/openapi.json')).body;
    for (const p of ['/v1/secrets/{path}:metadata', '/v1/secrets/{path}:rollback', '/v1/secrets/{path}:undelete', '/v1/secrets/{path}:destroy', '/v1/oidc/roles/{name}:revoke-tokens']) {
      expect(doc.paths, p).to.have.property(p);
    }
    const oidcDoc = (await call(plugin.addresses().oidc!.port, { ca: t.caPem }, 'GET', '/openapi.json')).body;
    expect(Object.keys(oidcDoc.paths).some((p) => p.startsWith('/v1/policies') || p.startsWith('/v1/oidc'))).to.equal(false);
  });
});
