import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runNode, tempDir } from '../helpers/env.js';

/** `npm run build:ci` into `out`, in a child process as npm would run it; the files it wrote. */
async function build(out: string): Promise<string[]> {
  const r = await runNode(['--import', 'tsx', path.join(ROOT, 'scripts/ci/build.ts'), out], {});
  expect(r.code, r.stderr).to.equal(0);
  return fs.readdirSync(out).sort().map((f) => path.join(out, f));
}

describe('CI client bundles (scripts/ci/dist, committed)', function () {
  this.timeout(120_000);

  it('are exactly what `npm run build:ci` makes from the current sources (rebuild and commit when this fails)', async () => {
    const built = await build(tempDir('nexus-ci-build'));
    expect(built.map((f) => path.basename(f))).to.deep.equal(['action-post.mjs', 'action.mjs', 'nexus-ci.mjs', 'workload-api.mjs', 'workload.proto']);
    for (const f of built) {
      const committed = path.join(ROOT, 'scripts/ci/dist', path.basename(f));
      expect(fs.existsSync(committed), `${committed} is missing: run npm run build:ci`).to.equal(true);
      expect(fs.readFileSync(f).equals(fs.readFileSync(committed)), `scripts/ci/dist/${path.basename(f)} is stale: run npm run build:ci and commit it`).to.equal(true);
    }
  });

  it('gRPC stays out of action.mjs and nexus-ci.mjs: nexus-ci imports workload-api.mjs from beside itself, only when a socket is used', () => {
    const dist = (f: string) => fs.readFileSync(path.join(ROOT, 'scripts/ci/dist', f), 'utf8');
    // The service name is in the gRPC client's code only (a property name survives minifying).
    for (const f of ['action.mjs', 'action-post.mjs', 'nexus-ci.mjs']) expect(dist(f), f).to.not.include('SpiffeWorkloadAPI');
    expect(dist('workload-api.mjs')).to.include('SpiffeWorkloadAPI');
    expect(dist('nexus-ci.mjs')).to.include('import("./workload-api.mjs")');
    for (const f of ['action.mjs', 'action-post.mjs']) expect(dist(f), f).to.not.include('workload-api');
  });

  it('the build is deterministic: two builds in different directories are byte-identical', async () => {
    const [a, b] = [await build(tempDir('nexus-ci-a')), await build(tempDir('nexus-ci-b'))];
    for (let i = 0; i < a.length; i++) expect(fs.readFileSync(a[i]!).equals(fs.readFileSync(b[i]!))).to.equal(true);
  });
});
