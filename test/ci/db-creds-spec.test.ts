import { expect } from 'chai';
import { dbCredNames, parseDbCreds, SpecError } from '../../scripts/ci/spec.js';

// `ROLE | PREFIX_`: the database credentials a job asks for, shared by the
// action's `db-creds` input and nexus-ci's `--db-creds`.
describe('CI db-creds spec (shared by the action and nexus-ci)', () => {
  it('reads `ROLE | PREFIX_` lines from several inputs, skipping blank lines and comments; names are PREFIX_USERNAME and PREFIX_PASSWORD', () => {
    const specs = parseDbCreds(['deploy | DB_\n\n# a comment\n  read-only.v2 |  RO_ ', 'migrate|M_']);
    expect(specs).to.deep.equal([
      { role: 'deploy', prefix: 'DB_', line: 'deploy | DB_' },
      { role: 'read-only.v2', prefix: 'RO_', line: 'read-only.v2 |  RO_' },
      { role: 'migrate', prefix: 'M_', line: 'migrate|M_' },
    ]);
    expect(dbCredNames(specs[0]!)).to.deep.equal({ username: 'DB_USERNAME', password: 'DB_PASSWORD' });
  });

  it('nothing asked is no request at all (db-creds are optional)', () => {
    expect(parseDbCreds([])).to.deep.equal([]);
    expect(parseDbCreds(['', '\n# none\n'])).to.deep.equal([]);
  });

  const bad: Array<[string, RegExp]> = [
    ['deploy', /expected "ROLE \| PREFIX_"/],
    ['deploy DB_', /expected "ROLE \| PREFIX_"/],
    ['deploy extra | DB_', /expected "ROLE \| PREFIX_"/],
    ['| DB_', /expected "ROLE \| PREFIX_"/],
    ['db/creds/deploy | DB_', /"db\/creds\/deploy" is not a role name/],
    ['dep;loy | DB_', /"dep;loy" is not a role name/],
    [`${'r'.repeat(129)} | DB_`, /is not a role name/],
    ['deploy |', /needs a prefix/],
    ['deploy | 1DB_', /"1DB_" is not a valid variable name prefix/],
    ['deploy | DB-', /"DB-" is not a valid variable name prefix/],
    ['deploy | db_', /"db_" is not a valid variable name prefix \(upper case/],
  ];
  for (const [line, msg] of bad) {
    it(`refuses ${JSON.stringify(line)}, naming the line`, () => {
      expect(() => parseDbCreds([line])).to.throw(SpecError, msg).with.property('message').that.includes(`db-creds "${line.trim()}"`);
    });
  }

  it('refuses two lines that would set the same variables', () => {
    expect(() => parseDbCreds(['deploy | DB_', 'migrate | DB_'])).to.throw(SpecError, /db-creds "migrate \| DB_": DB_USERNAME and DB_PASSWORD are already set by "deploy \| DB_"/);
  });
});
