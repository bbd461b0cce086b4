import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/env.js';

// `npm install` rewrites package-lock.json whenever its copy of the root
// package disagrees with package.json, so a user's first install would show a
// modified lock file. Running npm here takes minutes; the check is on what npm
// compares: the root entry, field by field.
describe('package-lock.json agrees with package.json (npm install leaves it unchanged)', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const rootEntry = lock.packages[''];

  it('name and version', () => {
    expect(lock.name).to.equal(pkg.name);
    expect(lock.version).to.equal(pkg.version);
    expect(rootEntry.name).to.equal(pkg.name);
    expect(rootEntry.version).to.equal(pkg.version);
  });

  for (const field of ['bin', 'dependencies', 'devDependencies', 'engines', 'license']) {
    it(field, () => {
      expect(rootEntry[field], field).to.deep.equal(pkg[field]);
    });
  }

  it('every dependency is locked', () => {
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(lock.packages[`node_modules/${name}`], name).to.be.an('object');
    }
  });
});
