import { expect } from 'chai';
import { compileGlob } from '../../nexus/policy/glob.js';
import { listScope } from '../../nexus/policy/list-scope.js';

// Every path of up to 3 segments over a small alphabet, in key order.
const SEGMENTS = ['a', 'ab', 'b', 'b-', 'x'];
const PATHS = (() => {
  let level = SEGMENTS;
  const all = [...level];
  for (let d = 1; d < 3; d++) all.push(...(level = level.flatMap((p) => SEGMENTS.map((s) => `${p}/${s}`))));
  return all.sort();
})();
const PREFIXES = [...new Set(PATHS.flatMap((p) => [...Array(p.length + 1).keys()].map((n) => p.slice(0, n))))];

const SCOPES = [['a/**'], ['a/*/b'], ['b*/x'], ['**/x'], ['ab'], ['x/*', 'a/**/b'], ['a*b/**', 'b-/*/a', 'ab/x'], ['**'], []];

describe('list scopes: ranges and seeks never pass over a listable path', () => {
  for (const globs of SCOPES) {
    it(JSON.stringify(globs), () => {
      const scope = listScope(globs);
      const listable = PATHS.filter((p) => globs.some((g) => compileGlob(g).test(p)));
      expect(PATHS.filter((p) => scope.allows(p))).to.deep.equal(listable);
      for (const prefix of PREFIXES) {
        const ranges = scope.ranges(prefix);
        expect([...ranges].sort(), prefix).to.deep.equal(ranges);
        ranges.forEach((r, i) => expect(ranges.slice(i + 1).some((s) => s.startsWith(r)), `${prefix}: ${ranges.join(' ')}`).to.equal(false));
        const wanted = listable.filter((p) => p.startsWith(prefix));
        expect(PATHS.filter((p) => ranges.some((r) => p.startsWith(r)) && scope.allows(p)), `prefix ${prefix}`).to.deep.equal(wanted);
      }
      for (const p of PATHS.filter((q) => !scope.allows(q))) {
        const past = scope.skipPast(p);
        expect(past >= p, p).to.equal(true);
        expect(listable.filter((q) => q > p && q <= past), `${p} -> ${past}`).to.deep.equal([]);
      }
    });
  }

  it('skips a whole subtree no glob reaches, and names no range for a prefix none can match', () => {
    const scope = listScope(['team/**', 'ops/*/public']);
    expect(scope.ranges('')).to.deep.equal(['ops/', 'team/']);
    expect(scope.ranges('hr')).to.deep.equal([]);
    expect(scope.ranges('tea')).to.deep.equal(['team/']);
    expect(scope.ranges('team/x')).to.deep.equal(['team/x']);
    expect(scope.ranges('ops/x/p')).to.deep.equal(['ops/x/p']);
    expect(scope.ranges('ops/x/private')).to.deep.equal([]);
    expect(scope.skipPast('ops/x/private/p00001')).to.equal('ops/x/pr\x7f');
    expect(scope.skipPast('ops/x')).to.equal('ops/x');
  });
});
