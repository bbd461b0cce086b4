import { expect } from 'chai';
import type { Core } from '../../nexus/core.js';
import { UnauthorizedError } from '../../nexus/errors.js';
import { issueToken, TokenPrincipals, type CurrentConfig } from '../../plugins/oidc/exchange.js';
import type { IssuerKeys } from '../../plugins/oidc/issuers.js';
import { OidcStore } from '../../plugins/oidc/store.js';
import type { IssuerConfig, RoleConfig } from '../../plugins/oidc/types.js';
import { openTestCore, tempDir } from '../helpers/env.js';

// An exchanged token's principal is worked out once per token and
// configuration; every change still bites on the next request.
describe('exchanged tokens: principal resolved once per token and configuration', () => {
  let core: Core;
  let store: OidcStore;
  let issuer: IssuerConfig;
  let roles: RoleConfig[];
  let keySet: ReadonlySet<string> | null;
  let principals: TokenPrincipals;
  let ids: number;
  let token: string;
  const now = Date.now();

  const role = (paths: string[]): RoleConfig => ({
    name: 'main',
    issuer: 'ci',
    bound_claims: { repository: 'org/repo' },
    bound_claims_glob: {},
    paths,
    permissions: ['read'],
    token_ttl_s: null,
    created_at: '',
    updated_at: '',
  });
  const refusal = async (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'accepted',
      (err: Error) => (err instanceof UnauthorizedError ? err.reason : `unexpected ${err.message}`),
    );

  beforeEach(async () => {
    core = await openTestCore(tempDir());
    store = new OidcStore(core.storage);
    issuer = {
      name: 'ci',
      issuer: 'https://idp.example',
      audiences: ['nexus'],
      algorithms: ['ES256'],
      jwks_uri: null,
      max_token_age_s: null,
      max_token_lifetime_s: 3600,
      tenant_claims: ['repository'],
      allowed_types: [],
      jwks: null,
      jwks_file: null,
      jwks_stale_s: 86400,
      rate_limit: null,
      created_at: '',
      updated_at: '',
    };
    roles = [role(['ci/org/repo/*'])];
    keySet = new Set(['tp-1', 'tp-2']);
    const current: CurrentConfig = { issuer: (n) => (n === issuer.name ? issuer : undefined), roles: () => roles, keySet: () => keySet };
    ids = 0;
    principals = new TokenPrincipals(store, current, (raw) => `id-${++ids}-${raw.length}`);
    const claims = { iss: issuer.issuer, aud: 'nexus', sub: 'repo:org/repo', repository: 'org/repo', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 600 };
    ({ token } = await issueToken(store, { issuer: { config: issuer } as IssuerKeys, header: { alg: 'ES256', typ: 'JWT' }, claims, key: { kid: 'k1', thumbprint: 'tp-1' } }, roles, now));
  });
  afterEach(() => core.close());

  it('the second request reuses the first one’s principal and audit token id', async () => {
    const a = await principals.principal(token, now);
    const b = await principals.principal(token, now + 1000);
    expect(b).to.equal(a);
    expect(ids).to.equal(1);
    expect(a.grants.map((g) => g.path)).to.deep.equal(['ci/org/repo/*']);
  });

  it('a narrowed role (a new roles array) is seen on the next request', async () => {
    await principals.principal(token, now);
    roles = [role(['ci/org/repo/only-this'])];
    expect((await principals.principal(token, now)).grants.map((g) => g.path)).to.deep.equal(['ci/org/repo/only-this']);
    roles = [];
    expect(await refusal(principals.principal(token, now))).to.equal('exchanged_token_roles_no_longer_match');
  });

  it('an issuer change is seen on the next request, and a refusal is not remembered', async () => {
    await principals.principal(token, now);
    const before = issuer;
    issuer = { ...issuer, audiences: ['someone-else'] };
    expect(await refusal(principals.principal(token, now))).to.equal('exchanged_token_wrong_audience');
    issuer = before;
    expect((await principals.principal(token, now)).roles).to.deep.equal(['main']);
  });

  it('a key set without the signing key is seen on the next request; the same set or one still holding it keeps the principal', async () => {
    const a = await principals.principal(token, now);
    keySet = new Set(['tp-1', 'tp-3']);
    const b = await principals.principal(token, now);
    expect(b.roles).to.deep.equal(['main']);
    expect(await principals.principal(token, now)).to.equal(b);
    expect(a).to.not.equal(b); // resolved again for the new set
    keySet = new Set(['tp-2', 'tp-3']);
    expect(await refusal(principals.principal(token, now))).to.equal('exchanged_token_signing_key_removed');
    // No set fetched yet (an IdP unreachable since start) is no reason to refuse.
    keySet = null;
    expect((await principals.principal(token, now)).roles).to.deep.equal(['main']);
  });

  it('a revocation is seen on the next request', async () => {
    await principals.principal(token, now);
    expect(await store.revokeRole('main')).to.equal(1);
    expect(await refusal(principals.principal(token, now))).to.equal('exchanged_token_unknown_or_revoked');
  });

  it('expiry is checked on every request, remembered principal or not', async () => {
    await principals.principal(token, now);
    expect(await refusal(principals.principal(token, now + 15 * 60_000 + 1))).to.equal('exchanged_token_expired');
    // A role whose TTL was shortened since: the remembered principal is not reused.
    roles = [{ ...role(['ci/org/repo/*']), token_ttl_s: 60 }];
    expect(await refusal(principals.principal(token, now + 61_000))).to.equal('exchanged_token_expired');
  });

  it('a token that was never issued, or is malformed, is refused', async () => {
    expect(await refusal(principals.principal(`nxo_${'A'.repeat(43)}`, now))).to.equal('exchanged_token_unknown_or_revoked');
    expect(await refusal(principals.principal('nxo_short', now))).to.equal('exchanged_token_malformed');
  });
});
