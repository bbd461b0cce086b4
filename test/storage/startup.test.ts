import { expect } from 'chai';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { ConfigError, DataIntegrityError, StartupError } from '../../nexus/errors.js';
import { loadConfig } from '../../nexus/config/index.js';
import { createLogger } from '../../nexus/log.js';
import { openTestCore, runBin, tempDir, testEnv } from '../helpers/env.js';

async function startupError(p: Promise<unknown>): Promise<Error> {
  try {
    const core = (await p) as { close(): void };
    core.close();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected start-up to fail');
}

describe('start-up: root key and schema', () => {
  it('creates the root key file with mode 0600 and never logs the key', async () => {
    const dir = tempDir();
    const out = new PassThrough();
    let logged = '';
    out.on('data', (d: Buffer) => (logged += d.toString()));
    const core = await openTestCore(dir, {}, createLogger({ level: 'trace', stream: out }));
    await core.secrets.put('a/b', { v: 'x' });
    core.close();
    const file = path.join(dir, 'root.key');
    expect(fs.statSync(file).mode & 0o777).to.equal(0o600);
    const keyB64 = fs.readFileSync(file, 'utf8').trim();
    const keyHex = Buffer.from(keyB64, 'base64').toString('hex');
    expect(logged).to.include('storage ready');
    expect(logged).to.not.include(keyB64);
    expect(logged).to.not.include(keyHex);
  });

  it('a wrong root key stops start-up with a clear error; the right one reads everything', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir);
    await core.secrets.put('a/b', { v: 'kept' });
    core.close();
    const wrong = Buffer.alloc(32, 7).toString('base64');
    const err = await startupError(openTestCore(dir, { NEXUS_ROOT_KEY: wrong }));
    expect(err).to.be.instanceOf(StartupError);
    expect(err.message).to.match(/root key .* does not match this database/);
    expect(err.message).to.not.include(wrong);
    const right = fs.readFileSync(path.join(dir, 'root.key'), 'utf8').trim();
    const again = await openTestCore(dir, { NEXUS_ROOT_KEY: right });
    expect((await again.secrets.get('a/b')).data).to.deep.equal({ v: 'kept' });
    again.close();
  });

  it('a missing key file beside an existing database is named, not replaced', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    fs.rmSync(path.join(dir, 'root.key'));
    const err = await startupError(openTestCore(dir));
    expect(err.message).to.match(/root key file .* is missing but the database .* exists/);
    expect(fs.existsSync(path.join(dir, 'root.key'))).to.equal(false);
  });

  it('a malformed NEXUS_ROOT_KEY is a config error naming the key, without its value', async () => {
    const err = (() => {
      try {
        loadConfig(testEnv(tempDir(), { NEXUS_ROOT_KEY: 'c2hvcnQ=' }));
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a config error');
    })();
    expect(err).to.be.instanceOf(ConfigError);
    expect(err.key).to.equal('NEXUS_ROOT_KEY');
    expect(err.message).to.not.include('c2hvcnQ=');
  });

  it('a tampered wrapped data key stops start-up with data_integrity', async () => {
    const dir = tempDir();
    const core = await openTestCore(dir);
    await core.secrets.put('a/b', { v: 'x' });
    core.close();
    const raw = new Database(path.join(dir, 'nexus.db'));
    const row = raw.prepare('SELECT id, wrapped FROM data_keys').get() as { id: string; wrapped: Buffer };
    row.wrapped[0] = row.wrapped[0]! ^ 0xff;
    raw.prepare('UPDATE data_keys SET wrapped = ? WHERE id = ?').run(row.wrapped, row.id);
    raw.close();
    const err = await startupError(openTestCore(dir));
    expect(err).to.be.instanceOf(DataIntegrityError);
    expect(err.message).to.include(row.id);
  });

  it('with NEXUS_AUTO_MIGRATE=false refuses pending migrations, naming nexus-migrate up', async () => {
    const dir = tempDir();
    const err = await startupError(openTestCore(dir, { NEXUS_AUTO_MIGRATE: 'false' }));
    expect(err).to.be.instanceOf(StartupError);
    expect(err.message).to.include('nexus-migrate up');

    const status = await runBin('nexus-migrate', ['status'], testEnv(dir));
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(/pending\s+001_secrets/);
    expect(status.stdout).to.match(/0 applied, \d+ pending/);

    const up = await runBin('nexus-migrate', ['up'], testEnv(dir));
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.match(/applied\s+001_secrets/);
    const again = await runBin('nexus-migrate', ['up'], testEnv(dir));
    expect(again.stdout).to.include('nothing to do');

    const core = await openTestCore(dir, { NEXUS_AUTO_MIGRATE: 'false' });
    await core.secrets.put('m/x', { a: 'b' });
    core.close();
    const after = await runBin('nexus-migrate', ['status'], testEnv(dir));
    expect(after.stdout).to.match(/applied\s+001_secrets\s+\d{4}-/);
    expect(after.stdout).to.match(/ 0 pending/);
  });

  it('refuses a database from a newer schema', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    const raw = new Database(path.join(dir, 'nexus.db'));
    raw.prepare("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 'x', '2030-01-01')").run();
    raw.close();
    const err = await startupError(openTestCore(dir));
    expect(err.message).to.match(/schema is newer than this Nexus.*999/);
    const status = await runBin('nexus-migrate', ['status'], testEnv(dir));
    expect(status.code).to.not.equal(0);
    expect(status.stdout).to.match(/unknown\s+999_from_the_future/);
    expect(status.stderr).to.match(/newer than this Nexus/);
  });

  it('refuses a migration whose file changed after it was applied', async () => {
    const dir = tempDir();
    (await openTestCore(dir)).close();
    const raw = new Database(path.join(dir, 'nexus.db'));
    raw.prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1").run();
    raw.close();
    const err = await startupError(openTestCore(dir));
    expect(err.message).to.match(/migration 1 .* was changed after it was applied/);
  });
});
