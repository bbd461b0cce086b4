import { expect } from 'chai';
import { BadRequestError } from '../../nexus/errors.js';
import { parseSecretData, parseSecretPath, parseVersion } from '../../nexus/secrets/rules.js';

function ruleOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(BadRequestError);
    return (err as BadRequestError).rule;
  }
  throw new Error('expected a bad_request');
}

describe('path and value rules', () => {
  it('accepts valid paths', () => {
    for (const p of ['a', 'app/db', 'A-z_0.9/x', '.env', '..hidden', 'a/b.c/d-e_f', Array(32).fill('s').join('/'), 'x'.repeat(512)]) {
      expect(parseSecretPath(p)).to.equal(p);
    }
  });

  const bad: Array<[string, unknown, string]> = [
    ['empty', '', 'path.empty'],
    ['not a string', 42, 'path.empty'],
    ['leading slash', '/a/b', 'path.slashes'],
    ['trailing slash', 'a/b/', 'path.slashes'],
    ['double slash', 'a//b', 'path.slashes'],
    ['dot segment', 'a/./b', 'path.dot_segment'],
    ['dot-dot segment', 'a/../b', 'path.dot_segment'],
    ['lone dot-dot', '..', 'path.dot_segment'],
    ['percent-encoded dot-dot', '%2e%2e/x', 'path.charset'],
    ['percent-encoded slash', 'a%2fb', 'path.charset'],
    ['backslash traversal', 'a\\..\\b', 'path.charset'],
    ['unicode letter', 'caf\u00e9/x', 'path.charset'],
    ['unicode fullwidth dot-dot', '\uff0e\uff0e/x', 'path.charset'],
    ['unicode one-dot leader', 'a/\u2024\u2024/b', 'path.charset'],
    ['NUL byte', 'a\u0000b', 'path.charset'],
    ['space', 'a b', 'path.charset'],
    ['glob star', 'a/*', 'path.charset'],
    ['33 segments', Array(33).fill('s').join('/'), 'path.segments'],
    ['513 bytes', 'x'.repeat(513), 'path.length'],
    ['multi-byte over 512 bytes', '\u00e9'.repeat(257), 'path.length'],
  ];
  for (const [name, input, rule] of bad) {
    it(`rejects a path: ${name} (${rule})`, () => expect(ruleOf(() => parseSecretPath(input))).to.equal(rule));
  }

  it('accepts a value up to 64 KiB encoded and rejects one byte more', () => {
    const overhead = JSON.stringify({ k: '' }).length;
    expect(parseSecretData({ k: 'x'.repeat(65536 - overhead) }).encoded.length).to.equal(65536);
    expect(ruleOf(() => parseSecretData({ k: 'x'.repeat(65537 - overhead) }))).to.equal('data.size');
  });

  it('rejects values that are not an object of strings', () => {
    expect(ruleOf(() => parseSecretData(null))).to.equal('data.type');
    expect(ruleOf(() => parseSecretData([]))).to.equal('data.type');
    expect(ruleOf(() => parseSecretData('s'))).to.equal('data.type');
    expect(ruleOf(() => parseSecretData(new Date()))).to.equal('data.type');
    expect(ruleOf(() => parseSecretData({ n: 1 }))).to.equal('data.value_type');
    expect(ruleOf(() => parseSecretData({ o: { nested: 'x' } }))).to.equal('data.value_type');
    expect(ruleOf(() => parseSecretData({ b: true }))).to.equal('data.value_type');
    expect(ruleOf(() => parseSecretData({ '': 'x' }))).to.equal('data.key');
  });

  it('keeps a "__proto__" key as plain data', () => {
    const parsed = parseSecretData(JSON.parse('{"__proto__":"x","a":"b"}'));
    expect(Object.keys(parsed.data)).to.deep.equal(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).a).to.equal(undefined);
  });

  it('parses versions strictly', () => {
    expect(parseVersion('7')).to.equal(7);
    for (const v of ['0', '-1', '1.5', '1e3', ' 1', '', 'abc', 0, -3, 2.5]) expect(ruleOf(() => parseVersion(v))).to.equal('version');
  });
});
