import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigFileSchema, loadConfig } from '../../nexus/config/index.js';
import { readmeRow, SETTINGS, type Setting } from '../../nexus/config/settings.js';
import { ConfigError } from '../../nexus/errors.js';
import { ROOT, runBin, tempDir, testEnv } from '../helpers/env.js';

/** The rows of the first table under README's "## Configuration" heading. */
function readmeTable(): string[][] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = text.split(/^## Configuration$/m)[1]!.split(/^## /m)[0]!;
  const rows = section.split('\n').filter((l) => l.startsWith('|'));
  // header and separator first
  return rows.slice(2).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

const settings = Object.values(SETTINGS) as Setting[];

describe('settings table', () => {
  it("README's settings table is the schema table, row for row", () => {
    expect(readmeTable()).to.deep.equal(settings.map(readmeRow));
  });

  it('every setting with a file key is accepted in the config file, and nothing else', () => {
    const shape = ConfigFileSchema.shape as Record<string, unknown>;
    for (const s of settings.filter((x) => x.file)) {
      const [a, b] = s.file!.split('.');
      expect(shape, s.file).to.have.property(a!);
      if (b) expect((shape[a!] as { unwrap(): { shape: object } }).unwrap().shape, s.file).to.have.property(b);
    }
  });

  // The same table decides start-up and --check-config: a value one refuses, the other refuses too.
  for (const s of settings.filter((x) => !x.path)) {
    it(`${s.env}: a bad value is refused by loadConfig and by nexus --check-config, naming ${s.env}`, async function () {
      this.timeout(30_000);
      const bad = s.env === 'NEXUS_OIDC_ADDR' ? 'nowhere' : s.env === 'NEXUS_ADMIN_SPIFFE_ID' ? 'pilot' : 'not a valid value';
      const env = testEnv(tempDir(), { [s.env]: bad });
      expect(() => loadConfig(env)).to.throw(ConfigError, s.env);
      const r = await runBin('nexus', ['--check-config'], env);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(`invalid configuration ${s.env}`);
      if (s.secret) expect(r.stderr).to.not.include(bad);
    });
  }
});
