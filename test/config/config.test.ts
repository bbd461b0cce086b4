import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../nexus/config/index.js';
import { ConfigError } from '../../nexus/errors.js';
import { OidcPlugin } from '../../plugins/oidc/plugin.js';
import { runBin, tempDir, testEnv } from '../helpers/env.js';
import { github, startIdp } from '../helpers/idp.js';
import { spawnServer } from '../helpers/process.js';
import { call } from '../helpers/server.js';

function keyOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).key;
  }
  throw new Error('expected a config error');
}

describe('configuration', function () {
  this.timeout(60_000);

  const envCases: Array<[string, string]> = [
    ['NEXUS_MTLS_ADDR', 'not-an-address'],
    ['NEXUS_MTLS_ADDR', '127.0.0.1:70000'],
    ['NEXUS_OIDC_ADDR', 'somewhere'],
    ['NEXUS_TRUST_DOMAIN', 'Upper.Case'],
    ['NEXUS_AUTO_MIGRATE', 'maybe'],
    ['NEXUS_MAX_VERSIONS', '0'],
    ['NEXUS_MAX_VERSIONS', '2.5'],
    ['NEXUS_OIDC_SUBJECT_RPS', '-1'],
    ['NEXUS_OIDC_FAILED_AUTH_RPS', 'ten'],
    ['NEXUS_ROOT_KEY', 'c2hvcnQ='],
    ['NEXUS_TLS_CA', '/tmp/ca.crt'],
    ['NEXUS_ADMIN_SPIFFE_ID', 'pilot'],
    ['NEXUS_LOG_LEVEL', 'loud'],
    ['NEXUS_OIDC_VAULT_COMPAT', 'maybe'],
    ['NEXUS_OIDC_TLS_KEY', '/tmp/oidc.key'],
    ['NEXUS_TLS_HANDSHAKE_TIMEOUT_MS', 'soon'],
    ['NEXUS_TLS_HANDSHAKE_TIMEOUT_MS', '0'],
    ['NEXUS_MTLS_MAX_CONNECTIONS', '1.5'],
    ['NEXUS_OIDC_MAX_CONNECTIONS', '-3'],
    ['NEXUS_OIDC_MAX_CONNECTIONS_PER_IP', '600'],
    ['NEXUS_MTLS_MAX_CONNECTIONS_PER_IP', 'many'],
  ];
  for (const [key, value] of envCases) {
    it(`${key}=${value} is refused, naming ${key}`, () => {
      expect(keyOf(() => loadConfig(testEnv(tempDir(), { [key]: value })))).to.equal(key === 'NEXUS_TLS_CA' ? 'NEXUS_TLS_CERT' : key === 'NEXUS_OIDC_TLS_KEY' ? 'NEXUS_OIDC_TLS_CERT' : key);
    });
  }

  const fileCases: Array<[string, string, RegExp]> = [
    ['unknown key', 'colour: blue\n', /^colour$/],
    ['bad address in the file', 'mtls_addr: nowhere\n', /^mtls_addr \(in .*\)$/],
    ['wrong type', 'tls:\n  ca: [a, b]\n', /^tls\.ca$/],
    ['a root key in the file', 'root_key: c2VjcmV0\n', /^root_key$/],
    ['not YAML', 'a: [\n', /^NEXUS_CONFIG$/],
    ['a per-IP cap above the global one', 'mtls:\n  max_connections: 10\n  max_connections_per_ip: 20\n', /^mtls\.max_connections_per_ip \(in .*\)$/],
  ];
  for (const [name, text, key] of fileCases) {
    it(`config file: ${name} is refused, naming the key`, () => {
      const dir = tempDir();
      const file = path.join(dir, 'nexus.yaml');
      fs.writeFileSync(file, text);
      expect(keyOf(() => loadConfig(testEnv(dir, { NEXUS_CONFIG: file })))).to.match(key);
    });
  }

  it('env wins over the file; relative paths are relative to the file', () => {
    const dir = tempDir();
    const file = path.join(dir, 'nexus.json');
    fs.writeFileSync(file, JSON.stringify({ data_dir: 'data', mtls_addr: '127.0.0.1:9001', max_versions: 5, oidc: { subject_rps: 7 } }));
    const c = loadConfig({ NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '127.0.0.1:9002' });
    expect(c.dataDir).to.equal(path.join(dir, 'data'));
    expect(c.mtlsAddr.port).to.equal(9002);
    expect(c.maxVersions).to.equal(5);
    expect(c.oidcSubjectRps).to.equal(7);
  });

  it('invalid seeded issuers and roles name their key', () => {
    const dir = tempDir();
    const file = path.join(dir, 'nexus.yaml');
    const check = (yaml: string) => {
      fs.writeFileSync(file, yaml);
      return keyOf(() => new OidcPlugin().checkConfig(loadConfig(testEnv(dir, { NEXUS_CONFIG: file }))));
    };
    expect(check('oidc:\n  issuers:\n    gh: { issuer: "https://x.example", audiences: [a], algorithms: [HS256] }\n')).to.equal('oidc.issuers.gh.algorithms');
    expect(check('oidc:\n  issuers:\n    gh: { issuer: "http://x.example", audiences: [a] }\n')).to.equal('oidc.issuers.gh.issuer');
    expect(check('oidc:\n  issuers:\n    gh: { issuer: "https://x.example", audiences: [a] }\n  roles:\n    r: { issuer: gh, bound_claims: { a: b }, paths: ["../x"], permissions: [read] }\n')).to.equal('oidc.roles.r.paths');
    expect(check('oidc:\n  roles:\n    r: { issuer: nobody, bound_claims: { a: b }, paths: ["x"], permissions: [read] }\n')).to.equal('oidc.roles.r.issuer');
  });

  it('nexus --check-config validates and exits; a bad value exits 1 naming the key', async () => {
    const dir = tempDir();
    const ok = await runBin('nexus', ['--check-config'], testEnv(dir));
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^configuration ok/);
    expect(fs.existsSync(path.join(dir, 'nexus.db')), 'check-config starts nothing').to.equal(false);
    const bad = await runBin('nexus', ['--check-config'], testEnv(dir, { NEXUS_MAX_VERSIONS: 'lots' }));
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/invalid configuration NEXUS_MAX_VERSIONS/);
    // The same value stops a real start-up.
    const start = await runBin('nexus', [], testEnv(dir, { NEXUS_MAX_VERSIONS: 'lots' }));
    expect(start.code).to.equal(1);
    expect(start.stderr).to.match(/NEXUS_MAX_VERSIONS/);
  });

  it('a declarative config seeds issuers and roles that work', async () => {
    const idp = await startIdp();
    const dir = tempDir();
    const file = path.join(dir, 'nexus.yaml');
    fs.writeFileSync(
      file,
      [
        'data_dir: data',
        'mtls_addr: 127.0.0.1:0',
        'oidc_addr: 127.0.0.1:0',
        'oidc:',
        '  issuers:',
        '    local:',
        `      issuer: ${idp.url}`,
        '      audiences: [nexus]',
        '      algorithms: [RS256]',
        '      tenant_claims: [repository, sub]',
        '  roles:',
        '    deploy:',
        '      issuer: local',
        '      bound_claims: { repository: org/repo }',
        '      paths: ["ci/{{claims.repository}}/*"]',
        '      permissions: [read]',
        '',
      ].join('\n'),
    );
    const srv = await spawnServer({ NEXUS_CONFIG: file, NEXUS_MTLS_ADDR: '', NEXUS_OIDC_ADDR: '' });
    try {
      const pki = path.join(dir, 'data/pki');
      const admin = { ca: fs.readFileSync(path.join(pki, 'ca.crt'), 'utf8'), cert: fs.readFileSync(path.join(pki, 'pilot.crt'), 'utf8'), key: fs.readFileSync(path.join(pki, 'pilot.key'), 'utf8') };
      expect((await call(srv.port, admin, 'GET', '/v1/oidc/roles/deploy')).body.paths).to.deep.equal(['ci/{{claims.repository}}/*']);
      await call(srv.port, admin, 'PUT', '/v1/secrets/ci/org/repo/db', { data: { v: 'seeded' } });
      const r = await call(srv.oidcPort!, { ca: admin.ca }, 'GET', '/v1/secrets/ci/org/repo/db', undefined, { headers: { Authorization: `Bearer ${await idp.token(github('org/repo'))}` } });
      expect(r.status, r.text).to.equal(200);
      expect(r.body.data).to.deep.equal({ v: 'seeded' });
    } finally {
      srv.child.kill('SIGTERM');
      await srv.exited;
      await idp.stop();
    }
  });
});
