import { expect } from 'chai';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startDbCreds } from '../../nexus/dbcreds/index.js';
import { createTarget, type Target } from '../helpers/dbcreds.js';
import { ROOT, openTestCore, tempDir, testEnv } from '../helpers/env.js';
import { requirePg } from '../helpers/pg.js';

/** Runs the lease-crash child until it kills itself; resolves to the leases it finished. */
function crashAt(dir: string, mode: string, role: string): Promise<{ id: string; username: string }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/lease-crash.ts'), mode, role], {
      cwd: ROOT,
      env: { ...process.env, ...testEnv(dir) } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited ${code}: ${err}`));
      resolve([...out.matchAll(/^lease (\S+) (\S+)$/gm)].map((m) => ({ id: m[1]!, username: m[2]! })));
    });
  });
}

// A lease row is written before its user, so a Nexus killed at any point
// leaves either nothing or a row the sweeper revokes: never a user without a lease.
describe('leases survive SIGKILL: no user without a lease, no expired lease with a user', function () {
  this.timeout(120_000);
  let target: Target;
  let dir: string;
  let role: string;

  before(async function () {
    target = await createTarget(await requirePg(this));
    role = `c${target.tag}`;
    dir = tempDir('nexus-lease-crash');
    const core = await openTestCore(dir);
    try {
      const db = await startDbCreds(core, { owner: 'setup' });
      await db.config.putConnection('main', { url: target.url, username: target.admin, password: target.adminPassword, allowed_roles: [role] });
      await db.config.putRole(role, { connection: 'main', creation_statements: ['CREATE ROLE {{name}} LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}'] });
      await db.stop();
    } finally {
      await core.close();
    }
  });
  after(async () => target?.drop());

  it('killed after the row, after the user, and after creation: on restart every user has a live lease and every expired lease is gone', async () => {
    expect(await crashAt(dir, 'after-row', role)).to.deep.equal([]);
    expect(await crashAt(dir, 'after-user', role)).to.deep.equal([]);
    const made = await crashAt(dir, 'after-create', role);
    expect(made).to.have.length(2);
    const users = await target.users(`v_${role}`);
    // The one killed after CREATE ROLE left a user (pending row), the last run two.
    expect(users).to.have.length(3);
    await new Promise((r) => setTimeout(r, 1200)); // the 1 s lease expires, the crashed claims run out
    const core = await openTestCore(dir);
    try {
      const db = await startDbCreds(core, { owner: 'restarted' });
      try {
        // The first sweep ran at start: orphans and the expired lease are gone, the live lease stays.
        const left = await target.users(`v_${role}`);
        expect(left).to.deep.equal([made[1]!.username]);
        const leases = await db.leases.list('db/creds/');
        expect(leases.map((l) => [l.lease_id, l.state])).to.deep.equal([[made[1]!.id, 'active']]);
      } finally {
        await db.stop();
      }
    } finally {
      await core.close();
    }
  });
});
