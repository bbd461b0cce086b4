import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import type { Env } from '../../nexus/config/index.js';
import { runBin, testEnv } from '../helpers/env.js';
import { startShamirServer } from '../helpers/seal.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';
import { operatorInit } from '../helpers/seal.js';
import { tempDir } from '../helpers/env.js';
import { initSoftToken } from '../helpers/softhsm.js';

/** Every file under `dir`, recursively. */
function allFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const SECRET = 'stolen-disk-canary-7f3a9c';

/** The root key's bytes in every form a file could hold them, and the secret value. */
function needles(root: Buffer): Array<[string, Buffer]> {
  return [
    ['root key (raw)', root],
    ['root key (base64)', Buffer.from(root.toString('base64'))],
    ['root key (base64url)', Buffer.from(root.toString('base64url'))],
    ['root key (hex)', Buffer.from(root.toString('hex'))],
    ['secret value', Buffer.from(SECRET)],
  ];
}

/** Writes secrets through the API, backs up with nexus-backup into the data dir, stops, and scans the data dir. */
async function writeBackUpAndScan(t: TestServer, env: Env, shares: string[] = []): Promise<void> {
  for (let i = 0; i < 20; i++) expect((await call(t.port, t.admin, 'PUT', `/v1/secrets/app/s${i}`, { data: { v: `${SECRET}-${i}` } })).status).to.equal(201);
  expect((await call(t.port, t.admin, 'GET', '/v1/secrets/app/s3')).body.data.v).to.equal(`${SECRET}-3`);
  const root = Buffer.from(t.server.core.rootKey.bytes);
  const backup = await runBin('nexus-backup', [path.join(t.dir, 'backups', 'copy.db')], testEnv(t.dir, env));
  expect(backup.code, backup.stderr).to.equal(0);
  await t.stop();
  const files = allFiles(t.dir);
  expect(files.some((f) => f.endsWith('copy.db'))).to.equal(true);
  expect(files.some((f) => f.endsWith('audit.jsonl'))).to.equal(true);
  expect(files.some((f) => path.basename(f) === 'root.key')).to.equal(false);
  for (const f of files) {
    const bytes = fs.readFileSync(f);
    for (const [what, needle] of [...needles(root), ...shares.map((x, i): [string, Buffer] => [`share ${i + 1}`, Buffer.from(x.slice(22))])]) expect(bytes.includes(needle), `${what} in ${path.relative(t.dir, f)}`).to.equal(false);
  }
}

describe('a stolen data dir (database, WAL, trail, backups, PKI) yields neither the root key nor a secret', function () {
  this.timeout(90_000);

  it('shamir', async () => {
    const s = await startShamirServer();
    fs.mkdirSync(path.join(s.dir, 'backups'));
    await s.unseal();
    await writeBackUpAndScan(s.t, { NEXUS_SEAL: 'shamir' }, s.shares);
  });

  it('pkcs11 (SoftHSM2, its token kept outside the data dir)', async () => {
    const token = initSoftToken();
    const saved = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = token.env.SOFTHSM2_CONF;
    try {
      const dir = tempDir('nexus-stolen-pkcs11');
      fs.mkdirSync(path.join(dir, 'backups'));
      const { shares } = await operatorInit(dir, token.env);
      const t = await startTestServer(token.env, { dir });
      await writeBackUpAndScan(t, token.env, shares);
    } finally {
      if (saved === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = saved;
    }
  });

  it('the scan finds the key in file mode (so it can fail)', async () => {
    const t = await startTestServer({});
    const root = Buffer.from(t.server.core.rootKey.bytes);
    await t.stop();
    const found = allFiles(t.dir).some((f) => needles(root).some(([, n]) => fs.readFileSync(f).includes(n)));
    expect(found).to.equal(true);
  });
});
