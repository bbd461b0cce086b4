import { expect } from 'chai';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { keyCheckValue, readKeyFile } from '../../nexus/crypto/root-key.js';
import { initSodium } from '../../nexus/crypto/sodium.js';
import { createCA, issueCert } from '../../nexus/pki/x509.js';
import { openTestCore, ROOT, runBin, tempDir, testEnv } from '../helpers/env.js';

const partials = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.partial'));

describe('admin scripts protect the data they handle', function () {
  this.timeout(120_000);
  before(() => initSodium());

  it('nexus-backup: a failed backup leaves no temporary file behind', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    const out = tempDir('nexus-backup-out');
    const target = path.join(out, 'backup.db');
    // A directory with something in it where the backup should land: the final rename fails.
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'x');
    const r = await runBin('nexus-backup', [target, '--force'], testEnv(dir));
    expect(r.code).to.equal(1);
    expect(partials(out)).to.deep.equal([]);
  });

  it('nexus-backup: written 0600 from the first byte; interrupted, it leaves neither a partial nor a target', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    // Bulk so the copy takes a while.
    const raw = new Database(path.join(dir, 'nexus.db'));
    raw.exec('CREATE TABLE filler (b BLOB)');
    const ins = raw.prepare('INSERT INTO filler VALUES (randomblob(1048576))');
    raw.transaction(() => {
      for (let i = 0; i < 96; i++) ins.run();
    })();
    raw.close();
    const out = tempDir('nexus-backup-out');
    const target = path.join(out, 'backup.db');
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts/bin/nexus-backup.js'), target], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...testEnv(dir) } as NodeJS.ProcessEnv, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let mode: number | null = null;
    for (let i = 0; i < 3000 && mode === null; i++) {
      const p = partials(out)[0];
      if (p) {
        try {
          mode = fs.statSync(path.join(out, p)).mode & 0o777;
        } catch {
          /* renamed meanwhile */
        }
      }
      if (mode === null) await new Promise((r) => setTimeout(r, 5));
    }
    expect(mode, 'saw the temporary file').to.not.equal(null);
    expect(mode!.toString(8)).to.equal('600');
    child.kill('SIGINT');
    const code = await exited;
    expect(partials(out), 'no temporary file left').to.deep.equal([]);
    if (code !== 0) expect(fs.existsSync(target), 'no half-written target').to.equal(false);
    else expect(fs.statSync(target).mode & 0o777).to.equal(0o600);
  });

  it('nexus-rotate-key keeps the previous key as root.key.<kcv>.old (0600) and names both check values', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    const keyFile = path.join(dir, 'root.key');
    const oldKcv = keyCheckValue(readKeyFile(keyFile));
    const oldText = fs.readFileSync(keyFile, 'utf8');
    const r = await runBin('nexus-rotate-key', [], testEnv(dir));
    expect(r.code, r.stderr).to.equal(0);
    const newKcv = keyCheckValue(readKeyFile(keyFile));
    const kept = path.join(dir, `root.key.${oldKcv}.old`);
    expect(fs.readFileSync(kept, 'utf8')).to.equal(oldText);
    expect(fs.statSync(kept).mode & 0o777).to.equal(0o600);
    expect(r.stdout).to.include(oldKcv).and.include(newKcv).and.include(kept);
  });

  describe('nexus --check-config and start-up', () => {
    let pki: string;
    before(async () => {
      pki = tempDir('nexus-pki');
      const ca = await createCA('test CA');
      const other = await createCA('other CA');
      const leaf = await issueCert(ca, { uris: ['spiffe://nexus.local/nexus'], dns: ['localhost'] });
      const stranger = await issueCert(other, { uris: ['spiffe://nexus.local/nexus'] });
      fs.writeFileSync(path.join(pki, 'ca.crt'), ca.cert.toString('pem'));
      fs.writeFileSync(path.join(pki, 'server.crt'), leaf.certPem);
      fs.writeFileSync(path.join(pki, 'server.key'), leaf.keyPem);
      fs.writeFileSync(path.join(pki, 'other.key'), stranger.keyPem);
      fs.writeFileSync(path.join(pki, 'garbage.crt'), 'not a certificate\n');
    });
    const tlsEnv = (over: Record<string, string> = {}) => ({ NEXUS_TLS_CA: path.join(pki, 'ca.crt'), NEXUS_TLS_CERT: path.join(pki, 'server.crt'), NEXUS_TLS_KEY: path.join(pki, 'server.key'), ...over });

    it('checks that every named file exists and parses, and that the TLS pair matches; creates nothing', async () => {
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ NEXUS_TLS_CA: path.join(pki, 'missing.crt') }, /NEXUS_TLS_CA: cannot read .*missing\.crt/],
        [{ NEXUS_TLS_CA: path.join(pki, 'garbage.crt') }, /NEXUS_TLS_CA: .*no certificate/],
        [{ NEXUS_TLS_KEY: path.join(pki, 'other.key') }, /NEXUS_TLS_KEY: .*does not match/],
        [{ NEXUS_ROOT_KEY_FILE: path.join(pki, 'garbage.crt') }, /root key file .* does not hold/],
      ];
      for (const [over, message] of cases) {
        const dataDir = path.join(tempDir(), 'data');
        const r = await runBin('nexus', ['--check-config'], testEnv(dataDir, tlsEnv(over)));
        expect(r.code, JSON.stringify(over)).to.equal(1);
        expect(r.stderr).to.match(message);
        expect(fs.existsSync(dataDir), 'creates nothing').to.equal(false);
      }
      const dataDir = path.join(tempDir(), 'data');
      const ok = await runBin('nexus', ['--check-config'], testEnv(dataDir, tlsEnv()));
      expect(ok.code, ok.stderr).to.equal(0);
      expect(fs.existsSync(dataDir), 'creates nothing').to.equal(false);
    });

    it('a bad config at start fails before anything is written to disk', async () => {
      const dataDir = path.join(tempDir(), 'data');
      const r = await runBin('nexus', [], testEnv(dataDir, { ...tlsEnv({ NEXUS_TLS_KEY: path.join(pki, 'other.key') }), NEXUS_MTLS_ADDR: '127.0.0.1:0', NEXUS_OIDC_ADDR: 'off' }));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/NEXUS_TLS_KEY/);
      expect(fs.existsSync(dataDir), 'nothing written').to.equal(false);
    });

    it('nexus --help prints help and exits 0, whatever the config', async () => {
      const r = await runBin('nexus', ['--help'], testEnv(tempDir(), { NEXUS_MAX_VERSIONS: 'bad' }));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/Usage: nexus/).and.match(/--check-config/).and.match(/NEXUS_DATA_DIR/);
      const bad = await runBin('nexus', ['--frobnicate'], testEnv(tempDir()));
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/unknown option/);
    });
  });
});
