import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { githubHeaders, gitlabHeaders, jobHook, raw, workflowRun } from '../helpers/ci-events.js';
import { github } from '../helpers/idp.js';
import { GITHUB_TENANT_CLAIMS, startOidcEnv, type OidcEnv } from '../helpers/oidc.js';
import { TENANT_CLAIM_PRESETS } from '../../plugins/oidc/schema.js';
import { call, type Res } from '../helpers/server.js';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { pgServerUrl } from '../helpers/pg.js';
import { startShamirServer } from '../helpers/seal.js';

interface Doc {
  servers?: unknown[];
  paths: Record<string, Record<string, { operationId?: string; responses: Record<string, { content?: Record<string, unknown> }> }>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Every documented operation: `METHOD path`. */
function operations(doc: Doc): Array<{ key: string; op: Doc['paths'][string][string] }> {
  return Object.entries(doc.paths).flatMap(([p, item]) => Object.entries(item).filter(([m]) => METHODS.includes(m)).map(([m, op]) => ({ key: `${m.toUpperCase()} ${p}`, op })));
}

/** A JSON pointer into the document, as a URI fragment. */
const pointer = (...tokens: string[]) => `#/${tokens.map((t) => encodeURIComponent(t.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

/** Checks a real response against the schema the document gives for its status. */
function conforms(doc: Doc, id: string, key: string, res: Res): void {
  const [method, p] = key.split(' ') as [string, string];
  const documented = doc.paths[p]?.[method.toLowerCase()]?.responses[String(res.status)];
  expect(documented, `${key}: status ${res.status} is documented (${res.text.slice(0, 200)})`).to.not.equal(undefined);
  if (!documented!.content?.['application/json']) return;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(doc as object, id);
  const validate = ajv.compile({ $ref: `${id}${pointer('paths', p, method.toLowerCase(), 'responses', String(res.status), 'content', 'application/json', 'schema')}` });
  const ok = validate(res.body);
  expect(ok, `${key} ${res.status}: ${JSON.stringify(validate.errors)} for ${res.text.slice(0, 300)}`).to.equal(true);
}

describe('OpenAPI documents: valid, complete, and true to the server', function () {
  this.timeout(60_000);
  let e: OidcEnv;
  const docs: Record<'mtls' | 'oidc', Doc> = {} as never;
  let jwt: string;

  before(async () => {
    e = await startOidcEnv();
    docs.mtls = (await e.admin('GET', '/openapi.json')).body;
    docs.oidc = (await e.oidc(undefined, 'GET', '/openapi.json')).body;
    await e.admin('PUT', '/v1/oidc/roles/ci-rw', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read', 'list', 'write'] });
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'x' } });
    jwt = await e.idp.token(github('org/repo'));
    const ci = { issuer: e.idp.url, audiences: ['nexus'], algorithms: ['RS256', 'ES256'], tenant_claims: [...GITHUB_TENANT_CLAIMS, ...TENANT_CLAIM_PRESETS.gitlab], webhook_secret: WEBHOOK_SECRET };
    expect((await e.admin('PUT', '/v1/oidc/issuers/ci', ci)).status).to.equal(200);
    // Database credentials need a real target: the machine's PostgreSQL.
    const server = await pgServerUrl();
    if (!server) throw new Error('the database credential routes need PostgreSQL: set NEXUS_TEST_DATABASE_URL');
    target = await createTarget(server);
    await e.admin('PUT', '/v1/db/connections/doc', connection());
    await e.admin('PUT', `/v1/db/roles/${dbRole()}`, { connection: 'doc', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'] });
    await e.admin('PUT', '/v1/oidc/roles/ci-db', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: [`db/creds/${dbRole()}`], permissions: ['read'] });
  });
  after(async () => {
    await e.stop();
    await target?.drop();
  });
  let target: Target | undefined;
  const dbRole = () => `d${target!.tag}`;
  const connection = () => ({ url: target!.url, username: target!.admin, password: target!.adminPassword, allowed_roles: [dbRole()] });
  const leases: Record<'mtls' | 'oidc', string> = { mtls: '', oidc: '' };
  let exchanged = '';
  const minted = (port: 'mtls' | 'oidc') => (res: Res) => {
    leases[port] = (res.body as { lease_id: string }).lease_id;
    return res;
  };
  const WEBHOOK_SECRET = 'contract-webhook-secret-0123';
  const runEnded = raw(workflowRun('org/repo', 1, 1));
  const jobEnded = raw(jobHook('group/proj', 1, 'success'));

  for (const port of ['mtls', 'oidc'] as const) {
    it(`${port} port: the document passes swagger-parser's validation`, async () => {
      // swagger-parser dereferences in place: give it a copy.
      await SwaggerParser.validate(structuredClone(docs[port]) as never);
    });

    it(`${port} port: servers, and a unique operationId on every operation`, () => {
      expect(docs[port].servers).to.be.an('array').that.is.not.empty;
      const ids = operations(docs[port]).map(({ key, op }) => {
        expect(op.operationId, key).to.be.a('string');
        return op.operationId;
      });
      expect(new Set(ids).size).to.equal(ids.length);
    });
  }

  /** One real request per documented operation that answers JSON, and what it should answer. */
  const mtlsCases: Record<string, () => Promise<Res>> = {
    'GET /v1/secrets': () => e.admin('GET', '/v1/secrets?prefix=ci/'),
    'GET /v1/secrets/{path}': () => e.admin('GET', '/v1/secrets/ci/org/repo/db'),
    'PUT /v1/secrets/{path}': () => e.admin('PUT', '/v1/secrets/doc/new', { data: { a: 'b' }, cas: 0 }),
    'PATCH /v1/secrets/{path}': () => e.admin('PATCH', '/v1/secrets/ci/org/repo/db', { data: { w: 'y', v: null } }),
    'POST /v1/secrets/{path}:rollback': () => e.admin('POST', '/v1/secrets/ci/org/repo/db:rollback', { version: 1 }),
    // Several versions, one of them missing: the 200 that names what was left alone.
    'DELETE /v1/secrets/{path}': () => e.admin('DELETE', '/v1/secrets/doc/new?versions=1,9'),
    'POST /v1/secrets/{path}:undelete': () => e.admin('POST', '/v1/secrets/doc/new:undelete', { versions: [1, 9] }),
    'POST /v1/secrets/{path}:destroy': () => e.admin('POST', '/v1/secrets/doc/new:destroy', { versions: [1, 9] }),
    'GET /v1/secrets/{path}:metadata': () => e.admin('GET', '/v1/secrets/ci/org/repo/db:metadata'),
    'GET /v1/policies': () => e.admin('GET', '/v1/policies'),
    'GET /v1/sys/seal-status': () => e.admin('GET', '/v1/sys/seal-status'),
    // A file seal is unsealed already (the status); sealing needs another seal: a shamir server of its own.
    'PUT /v1/sys/unseal': () => e.admin('PUT', '/v1/sys/unseal', { reset: true }),
    'PUT /v1/sys/seal': async () => {
      const s = await startShamirServer();
      try {
        await s.unseal();
        return await call(s.t.port, s.t.admin, 'PUT', '/v1/sys/seal');
      } finally {
        await s.t.stop();
      }
    },
    'GET /v1/signals': () => e.admin('GET', '/v1/signals?since=3600'),
    'PUT /v1/policies/{name}': () => e.admin('PUT', '/v1/policies/doc', { spiffe_id: 'spiffe://nexus.local/doc/*', paths: ['doc/**'], permissions: ['read'] }),
    'GET /v1/policies/{name}': () => e.admin('GET', '/v1/policies/builtin-admin'),
    'GET /v1/oidc/issuers': () => e.admin('GET', '/v1/oidc/issuers'),
    'PUT /v1/oidc/issuers/{name}': () => e.admin('PUT', '/v1/oidc/issuers/other', { issuer: 'https://idp.example.com', audiences: ['nexus'], max_token_age_s: 600, verify: false }),
    'GET /v1/oidc/issuers/{name}': () => e.admin('GET', '/v1/oidc/issuers/ci'),
    'GET /v1/oidc/roles': () => e.admin('GET', '/v1/oidc/roles'),
    'PUT /v1/oidc/roles/{name}': () => e.admin('PUT', '/v1/oidc/roles/doc', { issuer: 'ci', bound_claims: { n: 1, l: ['a', true] }, bound_claims_glob: { ref: 'refs/*', repository: 'org/*' }, paths: ['doc/{{claims.repository}}/*'], permissions: ['read'], token_ttl_s: 60 }),
    'GET /v1/oidc/roles/{name}': () => e.admin('GET', '/v1/oidc/roles/ci-rw'),
    'POST /v1/oidc/roles/{name}:revoke-tokens': () => e.admin('POST', '/v1/oidc/roles/doc:revoke-tokens'),
    'POST /v1/oidc/issuers/{name}:revoke-tokens': () => e.admin('POST', '/v1/oidc/issuers/ci:revoke-tokens', { role: 'doc' }),
    'POST /v1/oidc/roles:test': () => e.admin('POST', '/v1/oidc/roles:test', { jwt }),
    'PUT /v1/db/connections/{name}': () => e.admin('PUT', '/v1/db/connections/doc', connection()),
    'GET /v1/db/connections': () => e.admin('GET', '/v1/db/connections'),
    'GET /v1/db/connections/{name}': () => e.admin('GET', '/v1/db/connections/doc'),
    'PUT /v1/db/roles/{name}': () => e.admin('PUT', `/v1/db/roles/${dbRole()}`, { connection: 'doc', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'], max_ttl_s: 1200, username_template: 'doc_{{role}}' }),
    'GET /v1/db/roles': () => e.admin('GET', '/v1/db/roles'),
    'GET /v1/db/roles/{name}': () => e.admin('GET', `/v1/db/roles/${dbRole()}`),
    'GET /v1/db/creds/{role}': () => e.admin('GET', `/v1/db/creds/${dbRole()}?ttl=60`).then(minted('mtls')),
    'PUT /v1/leases/renew': () => e.admin('PUT', '/v1/leases/renew', { lease_id: leases.mtls, increment: 120 }),
    'GET /v1/leases': () => e.admin('GET', `/v1/leases?prefix=db/creds/${dbRole()}`),
    'PUT /v1/leases/revoke-prefix': () => e.admin('PUT', '/v1/leases/revoke-prefix', { prefix: `db/creds/${dbRole()}` }),
    'GET /healthz': () => e.admin('GET', '/healthz'),
    'GET /readyz': () => e.admin('GET', '/readyz'),
    'GET /openapi.json': () => e.admin('GET', '/openapi.json'),
  };
  const oidcCases: Record<string, () => Promise<Res>> = {
    'GET /v1/secrets': () => e.oidc(jwt, 'GET', '/v1/secrets?prefix=ci/'),
    'GET /v1/secrets (include=data)': () => e.oidc(jwt, 'GET', '/v1/secrets?prefix=ci/&include=data'),
    'GET /v1/secrets/{path}': () => e.oidc(jwt, 'GET', '/v1/secrets/ci/org/repo/db'),
    'PUT /v1/secrets/{path}': () => e.oidc(jwt, 'PUT', '/v1/secrets/ci/org/repo/new', { data: { a: 'b' } }),
    'PATCH /v1/secrets/{path}': () => e.oidc(jwt, 'PATCH', '/v1/secrets/ci/org/repo/new', { data: { c: 'd' } }),
    'POST /v1/secrets/{path}:rollback': () => e.oidc(jwt, 'POST', '/v1/secrets/ci/org/repo/new:rollback', { version: 1 }),
    'GET /v1/whoami': () => e.oidc(jwt, 'GET', '/v1/whoami'),
    'GET /v1/db/creds/{role}': async () => {
      exchanged = ((await e.oidc(undefined, 'POST', '/v1/auth/token', { jwt })).body as { token: string }).token;
      return e.oidc(exchanged, 'GET', `/v1/db/creds/${dbRole()}`).then(minted('oidc'));
    },
    'PUT /v1/leases/renew': () => e.oidc(exchanged, 'PUT', '/v1/leases/renew', { lease_id: leases.oidc }),
    'GET /v1/database/creds/{role}': () => e.oidc(undefined, 'GET', `/v1/database/creds/${dbRole()}`, undefined, { 'X-Vault-Token': exchanged }).then(minted('oidc')),
    'PUT /v1/sys/leases/renew': () => e.oidc(undefined, 'PUT', '/v1/sys/leases/renew', { lease_id: leases.oidc, increment: 30 }, { 'X-Vault-Token': exchanged }),
    'POST /v1/sys/leases/renew': () => e.oidc(undefined, 'POST', '/v1/sys/leases/renew', { lease_id: leases.oidc }, { 'X-Vault-Token': exchanged }),
    'POST /v1/auth/token': () => e.oidc(undefined, 'POST', '/v1/auth/token', { jwt }),
    'GET /healthz': () => e.oidc(undefined, 'GET', '/healthz'),
    'GET /readyz': () => e.oidc(undefined, 'GET', '/readyz'),
    'GET /openapi.json': () => e.oidc(undefined, 'GET', '/openapi.json'),
    'POST /v1/auth/jwt/login': () => e.oidc(undefined, 'POST', '/v1/auth/jwt/login', { role: 'ci-rw', jwt }),
    'GET /v1/secret/data/{path}': async () => e.oidc(undefined, 'GET', '/v1/secret/data/ci/org/repo/db', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/auth/token/lookup-self': async () => e.oidc(undefined, 'GET', '/v1/auth/token/lookup-self', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/sys/health': () => e.oidc(undefined, 'GET', '/v1/sys/health'),
    'POST /v1/ci/events/github': () => e.oidc(undefined, 'POST', '/v1/ci/events/github?issuer=ci', runEnded, githubHeaders(WEBHOOK_SECRET, runEnded)),
    'POST /v1/ci/events/gitlab': () => e.oidc(undefined, 'POST', '/v1/ci/events/gitlab?issuer=ci', jobEnded, gitlabHeaders(WEBHOOK_SECRET)),
    'PUT /v1/auth/jwt/login': () => e.oidc(undefined, 'PUT', '/v1/auth/jwt/login', { role: 'ci-rw', jwt }),
    'GET /v1/sys/internal/ui/mounts/{path}': async () => e.oidc(undefined, 'GET', '/v1/sys/internal/ui/mounts/secret', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/sys/mounts-all/{path}': async () => e.oidc(undefined, 'GET', '/v1/sys/mounts-all/secret', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/sys/internal/ui/mounts/secret/{path}': async () => e.oidc(undefined, 'GET', '/v1/sys/internal/ui/mounts/secret/ci/org/repo/db', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/sys/mounts-all/secret/{path}': async () => e.oidc(undefined, 'GET', '/v1/sys/mounts-all/secret/ci/org/repo/db', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/secret/metadata': async () => e.oidc(undefined, 'GET', '/v1/secret/metadata?list=true', undefined, { 'X-Vault-Token': await vaultToken() }),
    'GET /v1/secret/metadata/{path}': async () => e.oidc(undefined, 'GET', '/v1/secret/metadata/ci/org/repo/db', undefined, { 'X-Vault-Token': await vaultToken() }),
  };
  const operationOf = (key: string) => key.replace(/ \(.*\)$/, '');
  const vaultToken = async () => ((await e.oidc(undefined, 'POST', '/v1/auth/jwt/login', { role: 'ci-rw', jwt })).body as { auth: { client_token: string } }).auth.client_token;

  for (const [port, cases] of [['mtls', mtlsCases], ['oidc', oidcCases]] as const) {
    it(`${port} port: every operation that answers JSON has a real request here`, () => {
      const answersJson = operations(docs[port])
        .filter(({ op }) => Object.entries(op.responses).some(([s, r]) => s.startsWith('2') && r.content?.['application/json']))
        .map(({ key }) => key);
      // A key may name a variant of an operation after its own: `GET /v1/secrets (include=data)`.
      expect([...new Set(Object.keys(cases).map(operationOf))].sort()).to.deep.equal(answersJson.sort());
    });

    it(`${port} port: each documented response schema accepts the server's real response`, async () => {
      for (const [key, request] of Object.entries(cases)) {
        const res = await request();
        expect(res.status, `${key}: ${res.text.slice(0, 200)}`).to.be.within(200, 299);
        conforms(docs[port], `nexus-${port}.json`, operationOf(key), res);
      }
    });

    it(`${port} port: errors match the Error schema`, async () => {
      const res = port === 'mtls' ? await e.admin('GET', '/v1/policies/nope') : await e.oidc(jwt, 'GET', '/v1/secrets/ci/org/other');
      expect(res.status).to.be.oneOf([403, 404]);
      conforms(docs[port], `nexus-${port}-error.json`, port === 'mtls' ? 'GET /v1/policies/{name}' : 'GET /v1/secrets/{path}', res);
    });
  }

  it('oidc port: Vault-compatible errors match the VaultErrors schema', async () => {
    const res = await e.oidc(undefined, 'GET', '/v1/secret/data/ci/org/other', undefined, { 'X-Vault-Token': await vaultToken() });
    expect(res.status).to.equal(403);
    conforms(docs.oidc, 'nexus-oidc-vault-error.json', 'GET /v1/secret/data/{path}', res);
  });
});
