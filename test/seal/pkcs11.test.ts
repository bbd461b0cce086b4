import { expect } from 'chai';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import { call } from '../helpers/server.js';
import { operatorInit } from '../helpers/seal.js';
import { destroyTokenKey, initSoftToken, type SoftToken } from '../helpers/softhsm.js';
import fs from 'node:fs';
import path from 'node:path';

function adminCreds(dir: string) {
  const pki = path.join(dir, 'pki');
  return { cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8'), ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8') };
}

describe('PKCS#11 seal (SoftHSM2): unattended start, clear refusals', function () {
  this.timeout(90_000);
  let token: SoftToken;
  let dir: string;
  let srv: ServerProcess | null = null;
  const stop = async () => {
    if (!srv) return;
    srv.child.kill('SIGKILL');
    await srv.exited;
    srv = null;
  };
  after(stop);

  before(async () => {
    token = initSoftToken();
    dir = tempDir('nexus-pkcs11');
  });

  it('init makes the token key and prints recovery shares (never unseal shares); a second init is refused', async () => {
    const { shares, run } = await operatorInit(dir, token.env, 3, 2);
    expect(shares).to.have.length(3);
    expect(JSON.parse(run.stdout)).to.include({ recovery: true, threshold: 2 });
    const again = await runBin('nexus-operator', ['init', '--shares', '3', '--threshold', '2'], testEnv(dir, token.env));
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/already holds a pkcs11 seal \(token key nexus-root-wrap/);
    expect(fs.existsSync(path.join(dir, 'root.key'))).to.equal(false);
  });

  it('starts unsealed without a person, serves, survives kill -9 and starts again unattended', async () => {
    srv = await spawnServer(testEnv(dir, token.env));
    const admin = adminCreds(dir);
    expect((await call(srv.port, admin, 'GET', '/v1/sys/seal-status')).body).to.include({ sealed: false, type: 'pkcs11', threshold: 0 });
    expect((await call(srv.port, admin, 'PUT', '/v1/secrets/app/db', { data: { password: 'pkcs11-secret' } })).status).to.equal(201);
    // Recovery shares never unseal.
    const r = await call(srv.port, admin, 'PUT', '/v1/sys/seal');
    expect(r.body.sealed).to.equal(true);
    expect((await call(srv.port, admin, 'GET', '/v1/secrets/app/db')).body.error.code).to.equal('sealed');
    await stop();
    srv = await spawnServer(testEnv(dir, token.env));
    expect((await call(srv.port, admin, 'GET', '/v1/secrets/app/db')).body.data).to.deep.equal({ password: 'pkcs11-secret' });
    expect(fs.existsSync(path.join(dir, 'root.key'))).to.equal(false);
    await stop();
  });

  const refusals: Array<[string, (env: Record<string, string>) => Record<string, string>, RegExp]> = [
    ['a wrong PIN', (e) => ({ ...e, NEXUS_PKCS11_PIN: '9999' }), /the PKCS#11 token refused the PIN \(CKR_PIN_INCORRECT/],
    ['a missing module', (e) => ({ ...e, NEXUS_PKCS11_MODULE: '/nonexistent/libpkcs11.so' }), /NEXUS_PKCS11_MODULE \/nonexistent\/libpkcs11\.so does not exist/],
    ['a token label that matches no token', (e) => ({ ...e, NEXUS_PKCS11_TOKEN_LABEL: 'other' }), /no PKCS#11 token labelled other/],
    ['NEXUS_SEAL misspelt', (e) => ({ ...e, NEXUS_SEAL: 'pkcs-11' }), /invalid configuration NEXUS_SEAL: expected file, shamir or pkcs11/],
    ['NEXUS_SEAL=file on a sealed database', (e) => ({ ...e, NEXUS_SEAL: 'file' }), /NEXUS_SEAL=file but the database holds a pkcs11 seal/],
  ];
  for (const [what, env, message] of refusals) {
    it(`${what}: start fails naming it, serves nothing and writes nothing`, async () => {
      // SQLite's -wal and -shm come and go with any connection (a killed server leaves them).
      const files = () => fs.readdirSync(dir).filter((f) => !/-(wal|shm)$/.test(f)).sort();
      const before = files();
      const r = await runBin('nexus', [], testEnv(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...env(token.env) }));
      expect(r.code).to.equal(1);
      expect(r.stdout + r.stderr).to.match(message);
      expect(r.stdout + r.stderr).to.not.include('"listening"');
      expect(files()).to.deep.equal(before);
    });
  }

  it('the key removed from the token: start fails naming the key', async () => {
    destroyTokenKey(token);
    const r = await runBin('nexus', [], testEnv(dir, { NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off', ...token.env }));
    expect(r.code).to.equal(1);
    expect(r.stdout + r.stderr).to.match(/the PKCS#11 token holds no key labelled nexus-root-wrap \(NEXUS_PKCS11_KEY_LABEL\)/);
  });
});
