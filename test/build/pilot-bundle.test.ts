import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runNode, tempDir } from '../helpers/env.js';

describe('standalone Pilot (scripts/pilot-dist/pilot.cjs, committed, served at /v1/tools/pilot.cjs)', function () {
  this.timeout(120_000);

  it('is exactly what `npm run build:pilot` makes from the current sources (rebuild and commit when this fails)', async () => {
    const out = path.join(tempDir('nexus-pilot-build'), 'pilot.cjs');
    const r = await runNode(['--import', 'tsx', path.join(ROOT, 'scripts/build-pilot.ts'), out], {});
    expect(r.code, r.stderr).to.equal(0);
    const committed = path.join(ROOT, 'scripts/pilot-dist/pilot.cjs');
    expect(fs.existsSync(committed), 'scripts/pilot-dist/pilot.cjs is missing: run npm run build:pilot').to.equal(true);
    expect(fs.readFileSync(out).equals(fs.readFileSync(committed)), 'scripts/pilot-dist/pilot.cjs is stale: run npm run build:pilot and commit it').to.equal(true);
  });

  it('is one file: no require() of a package (gRPC stays out; only node: built-ins and workload-api.mjs beside it)', async () => {
    const text = fs.readFileSync(path.join(ROOT, 'scripts/pilot-dist/pilot.cjs'), 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).to.equal(true);
    const required = [...text.matchAll(/\brequire\("([^"]+)"\)/g)].map((m) => m[1]!).filter((m) => !m.startsWith('node:'));
    const builtins = new Set((await import('node:module')).builtinModules);
    expect(required.filter((m) => !builtins.has(m))).to.deep.equal([]);
    expect([...text.matchAll(/\bimport\("([^"]+)"\)/g)].map((m) => m[1]!).filter((m) => !m.startsWith('node:'))).to.deep.equal(['./workload-api.mjs']);
    expect(text).to.not.include('SpiffeWorkloadAPI');
  });
});
