import { expect } from 'chai';
import type { Principal } from '../../nexus/auth/principal.js';
import { PolicyEngine } from '../../nexus/policy/engine.js';
import type { Policy } from '../../nexus/policy/types.js';
import type { PoliciesRepo } from '../../nexus/storage/storage.js';

/** A policies table whose reads answer only when the test lets them. */
function slowRepo() {
  const reads: Array<(rows: Policy[]) => void> = [];
  const repo: PoliciesRepo = {
    all: () => new Promise((resolve) => reads.push(resolve)),
    get: async () => undefined,
    upsert: async () => {},
    delete: async () => false,
  };
  return { repo, reads };
}

const svc: Principal = { kind: 'spiffe', spiffeId: 'spiffe://nexus.local/svc-rep', trustDomain: 'nexus.local' };
const granted: Policy = { name: 'svc', spiffe_id: 'spiffe://nexus.local/svc-*', paths: ['app/**'], permissions: ['read'], created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };

describe('policy engine: overlapping reloads', () => {
  it('a reload overtaken by a later one (a change notice heard meanwhile) resolves only once the later one is in force', async () => {
    const { repo, reads } = slowRepo();
    const engine = new PolicyEngine(repo, 'spiffe://nexus.local/pilot');
    // The writer's own reload after its commit, then the reload its own NOTIFY starts.
    let inForce: boolean | null = null;
    const mine = engine.load().then(() => (inForce = engine.allows(svc, 'read', 'app/a')));
    const notice = engine.load();
    reads[0]!([granted]);
    await new Promise((r) => setImmediate(r));
    reads[1]!([granted]);
    await Promise.all([mine, notice]);
    expect(inForce).to.equal(true);
  });
});
