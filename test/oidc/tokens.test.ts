import { expect } from 'chai';
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { SignJWT, generateKeyPair, importJWK, exportJWK, type JWK } from 'jose';
import { github } from '../helpers/idp.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

describe('OIDC port: bad tokens are 401, never 500, and never logged', function () {
  this.timeout(30_000);
  let e: OidcEnv;
  let idpKey: JWK;
  const now = () => Math.floor(Date.now() / 1000);

  /** Signs with the IdP's own private key, so only the rule under test can refuse it. */
  const signAsIdp = async (payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: 'key-1', typ: 'JWT', ...header })
      .sign(await importJWK(idpKey, 'RS256'));

  const base = () => ({ ...github('org/repo'), iss: e.idp.url, iat: now(), exp: now() + 300 });

  before(async () => {
    e = await startOidcEnv();
    await e.admin('PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'the-secret-value' } });
    await e.admin('PUT', '/v1/oidc/roles/r', { issuer: 'ci', bound_claims: { repository: 'org/repo' }, paths: ['ci/org/repo/**'], permissions: ['read'] });
    idpKey = e.idp.server.issuer.keys.toJSON(true).find((k) => k.kid === 'key-1') as unknown as JWK;
  });
  after(() => e.stop());

  it('control: a token signed as the IdP with the base claims is accepted', async () => {
    const r = await e.oidc(await signAsIdp(base()), 'GET', '/v1/secrets/ci/org/repo/db');
    expect(r.status, r.text).to.equal(200);
  });

  it('accepts a token whose header carries x5t and x5t#S256 thumbprints, as GitHub Actions tokens do', async () => {
    // A thumbprint names a key; it carries none, so it cannot pick the key that verifies the token.
    const token = await signAsIdp(base(), { x5t: 'nEu4mIMjN6KMwnCSbAmGBq2Ws5Y', 'x5t#S256': 'Ubn4A2CgRzXLt6qnqh1smDnm4X3LRW1UVoJ6v0MCz3k' });
    const r = await e.oidc(token, 'GET', '/v1/secrets/ci/org/repo/db');
    expect(r.status, r.text).to.equal(200);
  });

  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(base())}.`, /alg_none/],
    [
      'HS256 signed with the issuer public key as secret',
      async () => {
        const pem = createPublicKey({ key: { ...idpKey, d: undefined, p: undefined, q: undefined, dp: undefined, dq: undefined, qi: undefined } as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        return new SignJWT(base()).setProtectedHeader({ alg: 'HS256', kid: 'key-1' }).sign(Buffer.from(pem as string));
      },
      /alg_symmetric/,
    ],
    [
      'a valid-looking token signed by an unknown key under a known kid',
      async () => {
        const { privateKey } = await generateKeyPair('RS256');
        return new SignJWT(base()).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).sign(privateKey);
      },
      /bad_signature/,
    ],
    ['an unknown kid', async () => signAsIdp(base(), { kid: 'no-such-kid' }), /unknown_kid/],
    ['expired', async () => signAsIdp({ ...base(), iat: now() - 600, exp: now() - 120 }), /expired/],
    ['nbf in the future', async () => signAsIdp({ ...base(), nbf: now() + 300 }), /not_yet_valid/],
    ['iat in the future', async () => signAsIdp({ ...base(), iat: now() + 300 }), /iat_in_future/],
    ['no exp', async () => signAsIdp({ ...base(), exp: undefined }), /missing_exp|claim_exp/],
    ['wrong iss', async () => signAsIdp({ ...base(), iss: 'http://127.0.0.1:1' }), /unknown_issuer/],
    ['wrong iss: trailing-slash variant', async () => signAsIdp({ ...base(), iss: `${e.idp.url}/` }), /unknown_issuer/],
    ['wrong aud', async () => signAsIdp({ ...base(), aud: 'someone-else' }), /wrong_audience/],
    ['no aud', async () => signAsIdp({ ...base(), aud: undefined }), /wrong_audience|claim_aud/],
    [
      'an embedded jwk header',
      async () => {
        const { publicKey } = await generateKeyPair('RS256');
        return signAsIdp(base(), { jwk: await exportJWK(publicKey) });
      },
      /forbidden_header: jwk/,
    ],
    ['a jku header', async () => signAsIdp(base(), { jku: 'http://127.0.0.1:9/jwks' }), /forbidden_header: jku/],
    ['an x5u header', async () => signAsIdp(base(), { x5u: 'http://127.0.0.1:9/cert' }), /forbidden_header: x5u/],
    [
      'a crit header',
      async () => {
        // jose will not sign an unknown crit, so sign by hand with the IdP's key.
        const input = `${b64({ alg: 'RS256', kid: 'key-1', crit: ['x-nexus'], 'x-nexus': 1 })}.${b64(base())}`;
        const key = createPrivateKey({ key: idpKey as never, format: 'jwk' });
        return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
      },
      /forbidden_header: crit/,
    ],
    ['an alg the issuer does not allow', async () => {
      const { privateKey } = await generateKeyPair('PS256');
      return new SignJWT(base()).setProtectedHeader({ alg: 'PS256', kid: 'key-1' }).sign(privateKey);
    }, /alg_not_allowed/],
    ['malformed base64', async () => 'eyJhbGciOiJSUzI1NiJ9.!!!.abc', /malformed/],
    ['malformed JSON', async () => `${b64('{"alg":')}.${b64('{"a":')}.c2ln`, /malformed/],
    ['two segments', async () => `${b64({ alg: 'RS256' })}.${b64(base())}`, /malformed/],
    ['a 17 KiB token', async () => `${b64({ alg: 'RS256' })}.${'A'.repeat(17 * 1024)}.c2ln`, /token_too_large/],
  ];
  for (const [name, make, reason] of cases) {
    it(`refuses ${name}`, async () => {
      const token = await make();
      const r = await e.oidc(token, 'GET', '/v1/secrets/ci/org/repo/db');
      expect(r.status, r.text).to.equal(401);
      expect(r.body.error).to.deep.include({ code: 'unauthorized', message: 'the token was not accepted' });
      expect(r.text).to.not.include('the-secret-value');
      const line = e.logs().split('\n').filter((l) => l.includes(r.body.error.request_id)).join('\n');
      expect(line, 'the log says why').to.match(reason);
      expect(e.logs(), 'the raw token is never logged').to.not.include(token.split('.')[1]!.slice(0, 40) || token);
    });
  }

  it('a 100 KiB token is refused before parsing (413), not a 500', async () => {
    const r = await e.oidc(`${'a'.repeat(100 * 1024)}`, 'GET', '/v1/secrets/ci/org/repo/db');
    expect(r.status).to.be.oneOf([401, 413]);
    expect(r.body.error.code).to.be.oneOf(['unauthorized', 'too_large']);
  });

  it('no credentials, or not a Bearer, is 401', async () => {
    expect((await e.oidc(undefined, 'GET', '/v1/whoami')).status).to.equal(401);
    expect((await e.oidc(undefined, 'GET', '/v1/whoami', undefined, { Authorization: 'Basic dTpw' })).status).to.equal(401);
  });

  it('the auth scheme is case-insensitive (RFC 9110 11.1), the credential is not', async () => {
    const jwt = await e.idp.token(github('org/repo'));
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      expect((await e.oidc(undefined, 'GET', '/v1/secrets/ci/org/repo/db', undefined, { Authorization: `${scheme} ${jwt}` })).status, scheme).to.equal(200);
    }
    const flipped = jwt.replace(/^./, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()));
    expect((await e.oidc(undefined, 'GET', '/v1/secrets/ci/org/repo/db', undefined, { Authorization: `bearer ${flipped}` })).status).to.equal(401);
  });
});
