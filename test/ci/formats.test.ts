import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Resolved } from '../../scripts/ci/fetch.js';
import { render } from '../../scripts/ci/formats.js';
import { tempDir } from '../helpers/env.js';
import { readDotenv } from '../helpers/dotenv-reader.js';

const resolved = (values: Record<string, string>): Resolved[] => Object.entries(values).map(([name, value]) => ({ name, value, path: 'ci/a/x', key: name.toLowerCase() }));

// Each would run `touch` in the reader's directory if any reader expanded it.
const HOSTILE: Record<string, string> = {
  BACKTICK: '`touch pwned-backtick`',
  SUBST: '$(touch pwned-subst)',
  DOLLAR: 'p$HOME${HOME}$$',
  DQUOTE: 'say "hi" \\"there\\"',
  BACKSLASH: 'a\\b\\\\c\\nd\\re',
  NEWLINES: 'line one\nline two `touch pwned-nl`\n\n  indented # not a comment\n',
  SQUOTE: "it's a 'quoted' line\nand another's",
  HASH: '#start and # middle',
  SPACES: '  both ends  ',
  EMPTY: '',
  EQUALS: 'a=b=c',
  EXPORTED: "export X=1; touch pwned-export",
};

/** Sources `file` in a POSIX shell (`set -a; . ./file`) and returns `names` from the resulting environment, byte for byte. */
function sourced(shell: string, dir: string, file: string, names: string[]): Record<string, string | null> {
  const dump = `process.stdout.write(JSON.stringify(Object.fromEntries(${JSON.stringify(names)}.map((n) => [n, process.env[n] ?? null]))))`;
  const out = execFileSync(shell, ['-c', 'set -a; . "$1"; exec "$2" -e "$3"', shell, file, process.execPath, dump], { cwd: dir, env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.toString()) as Record<string, string | null>;
}

describe('nexus-ci --format dotenv: inert to a POSIX shell and to a dotenv parser alike', () => {
  let dir: string;
  before(() => {
    dir = tempDir('nexus-ci-dotenv');
  });

  for (const shell of ['sh', 'bash']) {
    it(`${shell}: set -a; . ./file gives every hostile value back exactly and runs nothing`, () => {
      const file = path.join(dir, `hostile.${shell}.env`);
      fs.writeFileSync(file, render('dotenv', resolved(HOSTILE)));
      expect(sourced(shell, dir, file, Object.keys(HOSTILE))).to.deep.equal(HOSTILE);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('pwned'))).to.deep.equal([]);
    });
  }

  it("the dotenv package's rules read the same file back exactly", () => {
    expect(readDotenv(render('dotenv', resolved(HOSTILE)))).to.deep.equal(HOSTILE);
  });

  it('the reader follows the rules it claims (a check on the test itself)', () => {
    expect(readDotenv('A="x\\ny"\nB=\'x\\ny\'\nC= plain # comment\nexport D="multi\nline"\n# E=no\n')).to.deep.equal({ A: 'x\ny', B: 'x\\ny', C: 'plain', D: 'multi\nline' });
  });

  // No quoting carries these so that both readers agree: refused naming the variable, never showing the value.
  const refused: Array<[string, string, RegExp]> = [
    ['a NUL byte', 'a\0b', /NUL/],
    ['a carriage return (dotenv turns it into a line feed)', 'a\r\nb', /carriage return/],
    ["' together with $", "it's $HOME", /'/],
    ["' together with `", "it's `x`", /'/],
    ["' together with \"", `it's "x"`, /'/],
    ["' together with \\", "it's a\\b", /'/],
    ['a trailing backslash', 'C:\\dir\\', /backslash/],
  ];
  for (const [name, value, why] of refused) {
    it(`refuses ${name}, naming the variable and not the value`, () => {
      let err: Error | undefined;
      try {
        render('dotenv', resolved({ OK: 'fine', BAD_ONE: value }));
      } catch (e) {
        err = e as Error;
      }
      expect(err, 'refused').to.be.instanceOf(Error);
      expect(err!.message).to.include('BAD_ONE').and.match(why);
      expect(err!.message).to.not.include(value);
    });
  }
});
