import { expect } from 'chai';
import { parseSpecs, prefixedName, SpecError, writerMayName } from '../../scripts/ci/spec.js';

describe('CI secrets spec (shared by the action and nexus-ci)', () => {
  it('reads `PATH KEY | ENV_NAME` and `PATH | PREFIX_`, skipping blank lines and comments', () => {
    expect(parseSpecs(['ci/a/db password | DB_PASSWORD\n\n# a comment\n  ci/a/tls |  TLS_ ', 'ci/a/x | '])).to.deep.equal([
      { kind: 'key', path: 'ci/a/db', key: 'password', name: 'DB_PASSWORD', line: 'ci/a/db password | DB_PASSWORD' },
      { kind: 'all', path: 'ci/a/tls', prefix: 'TLS_', line: 'ci/a/tls |  TLS_' },
      { kind: 'all', path: 'ci/a/x', prefix: '', line: 'ci/a/x |' },
    ]);
  });

  it('reads subtree lines: `PATH/** | PREFIX_` (every level) and `PATH/* | PREFIX_` (one)', () => {
    expect(parseSpecs(['ci/a/** | APP_\nci/b/* |'])).to.deep.equal([
      { kind: 'tree', path: 'ci/a', depth: 'all', prefix: 'APP_', line: 'ci/a/** | APP_' },
      { kind: 'tree', path: 'ci/b', depth: 'one', prefix: '', line: 'ci/b/* |' },
    ]);
  });

  const bad: Array<[string, RegExp]> = [
    ['ci/a/** password | X', /a subtree \(ci\/a\/\*\*\) takes no key/],
    ['ci/a/*** | X', /not a secret path/],
    ['ci/*/db | X', /not a secret path/],
    ['ci/a/** | PRE-', /not a valid variable name prefix/],
    ['ci/a/db password DB_PASSWORD', /expected "PATH KEY \| ENV_NAME"/],
    ['ci/a/db password extra | X', /expected/],
    ['ci/../db password | X', /not a secret path/],
    ['/ci/db password | X', /not a secret path/],
    ['ci/a/db password | 1X', /not a valid environment variable name/],
    ['ci/a/db password | DB-PASSWORD', /not a valid environment variable name/],
    ['ci/a/db | PRE-', /not a valid variable name prefix/],
  ];
  for (const [line, msg] of bad) {
    it(`refuses ${JSON.stringify(line)}, naming the line`, () => {
      expect(() => parseSpecs([line])).to.throw(SpecError, msg).with.property('message').that.includes(line.trim());
    });
  }

  it('refuses an empty request', () => {
    expect(() => parseSpecs(['\n# nothing\n'])).to.throw(SpecError, /no secrets requested/);
  });

  it('names a secret\'s keys may not produce under `PATH | PREFIX`: loader and shell hooks, the runner\'s own variables', () => {
    const hooks = ['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'IFS', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'DYLD_INSERT_LIBRARIES', 'NODE_OPTIONS', 'PATH', 'PYTHONSTARTUP', 'PYTHONPATH', 'PERL5OPT', 'PERL5LIB', 'RUBYOPT', 'GIT_SSH_COMMAND', 'GIT_CONFIG_GLOBAL', 'SSH_AUTH_SOCK', 'GITHUB_ENV', 'GITHUB_TOKEN', 'RUNNER_TEMP', 'ACTIONS_ID_TOKEN_REQUEST_URL', 'CI_JOB_JWT', 'HOME', 'TMPDIR'];
    for (const name of hooks) expect(writerMayName(name), name).to.equal(false);
    for (const name of ['DB_PASSWORD', 'APP_PATH', 'PATHS', 'TLS_KEY_PEM', 'MY_LD_PRELOAD', 'ENVIRONMENT', 'HOMEPAGE']) expect(writerMayName(name), name).to.equal(true);
  });

  it('prefixed names: upper case, anything outside [A-Z0-9_] as _', () => {
    expect(prefixedName('TLS_', 'key.pem')).to.equal('TLS_KEY_PEM');
    expect(prefixedName('', '1st-key')).to.equal('_1ST_KEY');
  });
});
