import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env.js';
import { startOidcEnv, type OidcEnv } from '../helpers/oidc.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const COMMITTED: Record<string, string> = {
  'nexus-ci.mjs': 'scripts/ci/dist/nexus-ci.mjs',
  'pilot.cjs': 'scripts/pilot-dist/pilot.cjs',
  'workload-api.mjs': 'scripts/ci/dist/workload-api.mjs',
  'workload.proto': 'scripts/ci/dist/workload.proto',
};

/** Runs `cmd` with only node's directory and the system's on PATH, in `cwd`, with `env` (asynchronously: the server is in this process). */
function run(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd, env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('the OIDC port serves the committed client bundles: GET /v1/tools/FILE, no credentials, hash-pinned', function () {
  this.timeout(60_000);
  let env: OidcEnv;
  before(async () => {
    env = await startOidcEnv();
  });
  after(async () => {
    await env?.stop();
  });

  for (const [name, file] of Object.entries(COMMITTED)) {
    it(`${name}: the committed ${file}, X-Content-SHA256 and ETag its SHA-256; If-None-Match gets 304`, async () => {
      const bytes = fs.readFileSync(path.join(ROOT, file));
      const r = await env.oidc(undefined, 'GET', `/v1/tools/${name}`);
      expect(r.status, r.text).to.equal(200);
      expect(sha256(r.text)).to.equal(sha256(bytes));
      expect(r.headers['x-content-sha256']).to.equal(sha256(bytes));
      expect(r.headers.etag).to.equal(`"${sha256(bytes)}"`);
      expect(r.headers['content-type']).to.match(name.endsWith('proto') ? /^text\/plain/ : /^text\/javascript/);
      const again = await env.oidc(undefined, 'GET', `/v1/tools/${name}`, undefined, { 'If-None-Match': r.headers.etag as string });
      expect(again.status).to.equal(304);
      expect(again.text).to.equal('');
    });
  }

  it('nothing else is served under /v1/tools/ (no path into the installation)', async () => {
    for (const p of ['/v1/tools/action.mjs', '/v1/tools/../package.json', '/v1/tools/%2e%2e/package.json', '/v1/tools/']) {
      const r = await env.oidc(undefined, 'GET', p);
      expect(r.status, p).to.be.oneOf([401, 404]);
    }
  });

  it('as a template fetches them: curl --cacert into an empty directory, sha256sum -c SHA256SUMS, then pilot.cjs runs with a bare node (no node_modules)', async () => {
    const dir = fs.realpathSync(tempDir('nexus-tools-job'));
    const caFile = path.join(dir, 'nexus-ca.crt');
    fs.writeFileSync(caFile, env.t.caPem);
    const base = `https://127.0.0.1:${env.port}/v1/tools`;
    for (const f of ['pilot.cjs', 'SHA256SUMS']) {
      const c = await run(['curl', '-sSf', '--cacert', caFile, '-o', f, `${base}/${f}`], dir);
      expect(c.code, c.err).to.equal(0);
    }
    // SHA256SUMS names every tool; the job checks the one it fetched.
    const sums = fs.readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8');
    expect(sums.split('\n').filter(Boolean).map((l) => l.split('  ')[1])).to.have.members(Object.keys(COMMITTED));
    const check = await run(['sha256sum', '-c', '--ignore-missing', 'SHA256SUMS'], dir);
    expect(check.code, check.out + check.err).to.equal(0);
    expect(check.out).to.include('pilot.cjs: OK');
    fs.rmSync(caFile);

    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await run(['node', 'pilot.cjs', '--version'], dir)).out.trim()).to.equal(pkg.version);
    const pki = path.join(env.t.dir, 'pki');
    const creds = { NEXUS_ADDR: `https://127.0.0.1:${env.t.port}`, NEXUS_CERT: path.join(pki, 'pilot.crt'), NEXUS_KEY: path.join(pki, 'pilot.key'), NEXUS_CA: path.join(pki, 'ca.crt') };
    const put = await run(['node', 'pilot.cjs', 'secret', 'put', 'tools/x', 'k=from-a-bare-node'], dir, creds);
    expect(put.code, put.err).to.equal(0);
    const get = await run(['node', 'pilot.cjs', 'secret', 'get', 'tools/x', '--field', 'k'], dir, creds);
    expect(get.code, get.err).to.equal(0);
    expect(get.out).to.equal('from-a-bare-node');
    // With a Workload API socket and nothing beside it: a message naming what to fetch, not a stack trace.
    const svid = await run(['node', 'pilot.cjs', 'whoami'], dir, { SPIFFE_ENDPOINT_SOCKET: `unix://${dir}/agent.sock` });
    expect(svid.code).to.equal(1);
    expect(svid.err).to.match(/^pilot: cannot use the SPIFFE Workload API .*workload-api\.mjs and workload\.proto .*\/v1\/tools\/workload-api\.mjs/);
  });
});
