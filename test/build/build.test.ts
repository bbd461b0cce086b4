import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { loadIssuer } from '../../nexus/pki/x509.js';
import { ROOT, runNode, tempDir } from '../helpers/env.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import { startWorkloadApi, svidFrom } from '../helpers/workload-api.js';

/** Every file under `dir`, relative. */
function files(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

describe('production build: npm run build compiles to dist/, bins and npm start run compiled JavaScript', function () {
  this.timeout(240_000);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; scripts: Record<string, string> };
  let home: string;
  let dist: string;
  let srv: ServerProcess | null = null;

  before(async () => {
    // A copy of the repository's layout: package.json, node_modules and the build output beside them.
    home = tempDir('nexus-build');
    dist = path.join(home, 'dist');
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(home, 'package.json'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(home, 'node_modules'));
    const r = await runNode([path.join(ROOT, 'scripts/build.mjs'), '--out', dist], {});
    expect(r.code, r.stderr + r.stdout).to.equal(0);
  });
  after(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
  });

  it('package.json: every bin and npm start point at compiled JavaScript, built on install (prepare) and before start', () => {
    for (const [name, bin] of Object.entries(pkg.bin)) {
      expect(bin, name).to.match(/^dist\/bin\/[\w-]+\.c?js$/);
      expect(fs.existsSync(path.join(home, bin)), `${bin} was built`).to.equal(true);
    }
    expect(pkg.scripts.start).to.equal('node dist/scripts/nexus.js');
    expect(pkg.scripts.build).to.equal('node scripts/build.mjs');
    expect(pkg.scripts.prepare).to.match(/scripts\/build\.mjs/);
    expect(pkg.scripts.prestart).to.match(/scripts\/build\.mjs --if-stale/);
    expect(fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')).to.include('dist/');
    for (const script of [pkg.scripts.start, pkg.scripts.prestart]) expect(script).to.not.match(/tsx/);
  });

  it('the committed client bundles are copied where the compiled OIDC port serves them from (/v1/tools/)', () => {
    for (const f of ['scripts/ci/dist/nexus-ci.mjs', 'scripts/ci/dist/workload-api.mjs', 'scripts/ci/dist/workload.proto', 'scripts/pilot-dist/pilot.cjs']) {
      expect(fs.existsSync(path.join(dist, f)), f).to.equal(true);
      expect(fs.readFileSync(path.join(dist, f)).equals(fs.readFileSync(path.join(ROOT, f))), f).to.equal(true);
    }
  });

  it('nothing in dist/ loads tsx or a .ts file', () => {
    const all = files(dist).filter((f) => /\.c?js$/.test(f));
    expect(all.length).to.be.greaterThan(20);
    for (const f of all) {
      const text = fs.readFileSync(path.join(dist, f), 'utf8');
      expect(/from ['"]tsx|import\(['"]tsx|require\(['"]tsx|\.ts['"]\)/.test(text), f).to.equal(false);
    }
  });

  it('the compiled server and Pilot work together; the compiled admin scripts run', async () => {
    const data = tempDir('nexus-build-data');
    srv = await spawnServer({ NEXUS_DATA_DIR: data }, path.join(dist, 'bin/nexus.js'));
    const env = { NEXUS_DATA_DIR: data, NEXUS_ADDR: `https://127.0.0.1:${srv.port}` };
    const pilot = (args: string[]) => runNode([path.join(dist, 'bin/pilot.cjs'), ...args], env);
    const put = await pilot(['secret', 'put', 'built/x', 'k=compiled']);
    expect(put.code, put.stderr).to.equal(0);
    expect((await pilot(['secret', 'get', 'built/x', '--field', 'k'])).stdout).to.equal('compiled');
    expect((await pilot(['--version'])).stdout.trim()).to.equal(pkg.version);
    // Run as users run it (npx pilot, pilot on PATH): the file itself, through its shebang.
    const direct = spawnSync(path.join(dist, 'bin/pilot.cjs'), ['secret', 'get', 'built/x', '--field', 'k'], {
      env: { PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`, HOME: process.env.HOME, ...env },
      encoding: 'utf8',
    });
    expect(direct.status, direct.stderr).to.equal(0);
    expect(direct.stdout).to.equal('compiled');
    // The bundled Pilot loads gRPC (outside the bundle) and the .proto beside it for the Workload API.
    const ca = await loadIssuer(fs.readFileSync(path.join(data, 'pki/ca.crt'), 'utf8'), fs.readFileSync(path.join(data, 'pki/ca.key'), 'utf8'));
    const agent = await startWorkloadApi(await svidFrom(ca, 'spiffe://nexus.local/pilot'));
    try {
      const viaAgent = await runNode([path.join(dist, 'bin/pilot.cjs'), 'secret', 'get', 'built/x', '--field', 'k'], { NEXUS_ADDR: env.NEXUS_ADDR, SPIFFE_ENDPOINT_SOCKET: agent.endpoint });
      expect(viaAgent.code, viaAgent.stderr).to.equal(0);
      expect(viaAgent.stdout).to.equal('compiled');
    } finally {
      await agent.stop();
    }
    const migrate = await runNode([path.join(dist, 'bin/nexus-migrate.js'), 'status'], { NEXUS_DATA_DIR: tempDir('nexus-build-migrate') });
    expect(migrate.code, migrate.stderr).to.equal(0);
  });
});
