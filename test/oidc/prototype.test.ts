import { expect } from 'chai';
import { parseRole } from '../../plugins/oidc/schema.js';
import { resolveRoles } from '../../plugins/oidc/roles.js';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

// JSON.parse makes "__proto__" an own property; copying it into an ordinary
// object sets the prototype instead, and a binding disappears without a word.
describe('OIDC roles: no prototype games', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  before(async () => {
    e = await startOidcEnv();
    expect((await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } })).status).to.equal(201);
  });
  after(() => e.stop());

  const putRaw = (name: string, json: string) => e.admin('PUT', `/v1/oidc/roles/${name}`, Buffer.from(json));

  for (const claim of ['__proto__', 'constructor', 'prototype', 'ctx.__proto__', '__proto__.polluted', 'constructor.prototype', 'a.constructor']) {
    for (const field of ['bound_claims', 'bound_claims_glob']) {
      it(`${field} with the claim name ${claim} is 400, never a silently dropped binding`, async () => {
        const r = await putRaw('p', `{"issuer":"ci","${field}":{"repository":"org/repo","${claim}":"x"},"paths":["ci/org/repo/**"],"permissions":["read"]}`);
        expect(r.status, r.text).to.equal(400);
        expect(r.body.error.message).to.match(/claim name/);
        expect((await e.admin('GET', '/v1/oidc/roles/p')).status).to.equal(404);
      });
    }
  }

  it('a role keeps every binding it was given, including names that exist on Object.prototype', async () => {
    const r = await putRaw('own', '{"issuer":"ci","bound_claims":{"repository":"org/repo","hasOwnProperty":"yes","toString":"t"},"paths":["ci/org/repo/**"],"permissions":["read"]}');
    expect(r.status, r.text).to.equal(201);
    expect(r.body.bound_claims).to.deep.equal({ repository: 'org/repo', hasOwnProperty: 'yes', toString: 't' });
    const without = await e.oidc(await e.idp.token(github('org/repo')), 'GET', '/v1/secrets/ci/org/repo/db');
    expect(without.status).to.equal(403);
    const withBoth = await e.oidc(await e.idp.token(github('org/repo', 'refs/heads/main', { hasOwnProperty: 'yes', toString: 't' })), 'GET', '/v1/secrets/ci/org/repo/db');
    expect(withBoth.status, withBoth.text).to.equal(200);
    expect((await e.admin('DELETE', '/v1/oidc/roles/own')).status).to.equal(204);
  });

  it('parsed bindings are maps without a prototype, and a polluted Object.prototype grants nothing', () => {
    const role = parseRole('r', JSON.parse('{"issuer":"ci","bound_claims":{"repository":"org/repo"},"bound_claims_glob":{"ref":"refs/*"},"paths":["x/**"],"permissions":["read"]}'));
    expect(Object.getPrototypeOf(role.bound_claims)).to.equal(null);
    expect(Object.getPrototypeOf(role.bound_claims_glob)).to.equal(null);
    const proto = Object.prototype as Record<string, unknown>;
    proto.repository = 'org/repo';
    proto.ref = 'refs/heads/main';
    try {
      expect(resolveRoles([{ ...role, issuer: 'ci' }], 'ci', {}).roles).to.deep.equal([]);
    } finally {
      delete proto.repository;
      delete proto.ref;
    }
  });
});
