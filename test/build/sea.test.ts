import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

const SEA = path.join(ROOT, 'dist/sea');
const suffix = `${process.platform}-${process.arch}`;

describe('standalone executables (npm run build:sea: Node single executable applications)', function () {
  this.timeout(60_000);
  let srv: TestServer | null = null;

  before(function () {
    if (fs.existsSync(path.join(SEA, `pilot-${suffix}`))) return;
    // .ci/run builds them first: there, their absence is a failure.
    if (process.env.CI) throw new Error(`dist/sea/pilot-${suffix} is missing: .ci/run runs npm run build:sea before the tests`);
    console.warn('      (skipped: run npm run build:sea first)');
    this.skip();
  });
  after(async () => {
    await srv?.stop();
  });

  it('package.json builds them with npm run build:sea', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['build:sea']).to.equal('node scripts/build-sea.mjs');
  });

  for (const name of ['pilot', 'nexus-ci']) {
    it(`${name}-${suffix} has a SHA-256 file that matches it (sha256sum -c format)`, () => {
      const exe = path.join(SEA, `${name}-${suffix}`);
      const line = fs.readFileSync(`${exe}.sha256`, 'utf8');
      expect(line).to.equal(`${createHash('sha256').update(fs.readFileSync(exe)).digest('hex')}  ${name}-${suffix}\n`);
    });
  }

  it('pilot runs with no node at all: --version, then a secret read over mTLS; nexus-ci prints its usage', async () => {
    srv = await startTestServer();
    const cwd = tempDir('nexus-sea');
    // An empty PATH: the executable carries its own runtime.
    const run = (exe: string, args: string[], env: Record<string, string> = {}) => runNode(args, { PATH: '', HOME: cwd, ...env }, { cwd, node: path.join(SEA, `${exe}-${suffix}`) });
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await run('pilot', ['--version']);
    expect(v.code, v.stderr).to.equal(0);
    expect(v.stdout.trim()).to.equal(pkg.version);
    expect(v.stderr, 'no experimental warning').to.equal('');
    expect((await call(srv.port, srv.admin, 'PUT', '/v1/secrets/sea/x', { data: { k: 'from-the-executable' } })).status).to.equal(201);
    const pki = path.join(srv.dir, 'pki');
    const get = await run('pilot', ['secret', 'get', 'sea/x', '--field', 'k'], { NEXUS_ADDR: `https://127.0.0.1:${srv.port}`, NEXUS_CERT: path.join(pki, 'pilot.crt'), NEXUS_KEY: path.join(pki, 'pilot.key'), NEXUS_CA: path.join(pki, 'ca.crt') });
    expect(get.code, get.stderr).to.equal(0);
    expect(get.stdout).to.equal('from-the-executable');
    const ci = await run('nexus-ci', ['--help']);
    expect(ci.code, ci.stderr).to.equal(0);
    expect(ci.stdout + ci.stderr).to.match(/^usage: nexus-ci /);
  });
});
