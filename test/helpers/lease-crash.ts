// A child process for lease crash tests: mints credentials for ROLE and
// SIGKILLs itself at MODE, as a Nexus killed at that instant would stop.
//   after-row      the lease row written, the user not yet created
//   after-user     the user created, its row not yet marked active
//   after-create   a 1 s lease and a 300 s lease fully made
// Prints `lease <id> <username>` for each lease it finished.
import { loadConfig } from '../../nexus/config/index.js';
import { openCore } from '../../nexus/core.js';
import { DbCredsConfig } from '../../nexus/dbcreds/config.js';
import { LeaseService } from '../../nexus/dbcreds/leases.js';
import { DEFAULT_TARGET_OPTIONS } from '../../nexus/dbcreds/target.js';
import { silentLogger } from '../../nexus/log.js';

const [mode, role] = process.argv.slice(2) as [string, string];
const core = await openCore(loadConfig(), silentLogger());
const die = (): never => {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
};
const leases = new LeaseService(core.storage, new DbCredsConfig(core.storage, core.keyring, DEFAULT_TARGET_OPTIONS), core.audit, core.metrics, silentLogger(), {
  owner: 'crashed',
  pendingGraceMs: 500,
  afterLeaseRow: () => (mode === 'after-row' ? die() : undefined),
  afterUserCreated: () => (mode === 'after-user' ? die() : undefined),
});
const caller = { principal: { kind: 'spiffe' as const, spiffeId: 'spiffe://nexus.local/crash', trustDomain: 'nexus.local' }, port: 'mtls' as const, tokenHash: null, tokenExpiresAt: null, mayRead: () => true };
for (const ttl of [1, 300]) {
  const c = await leases.issue(role, caller, ttl);
  process.stdout.write(`lease ${c.lease_id} ${c.username}\n`);
}
die();
