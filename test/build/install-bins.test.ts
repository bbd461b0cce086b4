import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env.js';

describe('npm run install:bins [-- --prefix DIR]: pilot and nexus-ci on PATH, from the committed single files', function () {
  this.timeout(60_000);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; private: boolean; scripts: Record<string, string> };

  it('the package has a name no template resolves (scoped, private) and the install script', () => {
    expect(pkg.name).to.match(/^@[\w-]+\/[\w-]+$/);
    expect(pkg.private).to.equal(true);
    expect(pkg.scripts['install:bins']).to.equal('node scripts/install-bins.mjs');
  });

  it('installs wrappers into DIR/bin that run from any directory with only node on PATH', () => {
    const prefix = tempDir('nexus-prefix');
    // As npm would run it: `npm run install:bins -- --prefix DIR` passes the arguments on.
    const r = spawnSync('npm', ['run', '--silent', 'install:bins', '--', '--prefix', prefix], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const cwd = tempDir('nexus-elsewhere');
    const env = { PATH: `${path.join(prefix, 'bin')}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: cwd };
    const pilot = spawnSync('pilot', ['--version'], { cwd, env, encoding: 'utf8' });
    expect(pilot.status, pilot.stderr).to.equal(0);
    expect(pilot.stdout.trim()).to.equal(pkg.version);
    const ci = spawnSync('nexus-ci', ['--help'], { cwd, env, encoding: 'utf8' });
    expect(ci.status, ci.stderr).to.equal(0);
    expect(ci.stdout + ci.stderr).to.match(/^usage: nexus-ci /);
    // The Workload API client lies beside both.
    expect(fs.readdirSync(path.join(prefix, 'lib/nexus')).sort()).to.deep.equal(['nexus-ci.mjs', 'pilot.cjs', 'workload-api.mjs', 'workload.proto']);
  });
});
