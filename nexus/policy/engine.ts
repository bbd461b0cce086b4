import type { Authorizer, Permission, Principal } from '../auth/principal.js';
import type { PoliciesRepo } from '../storage/storage.js';
import { compileGlob } from './glob.js';
import { BUILTIN_ADMIN_POLICY, type Policy } from './types.js';

interface Compiled {
  id: RegExp;
  globs: string[];
  paths: RegExp[];
  permissions: ReadonlySet<Permission>;
}

/**
 * SPIFFE policy decisions: default deny, permissions are the union over every
 * policy whose spiffe_id glob matches. Decisions are synchronous, against
 * policies compiled in memory: load() at start, and again whenever a policy
 * changes (here or, with a shared database, on another replica).
 */
export class PolicyEngine implements Authorizer {
  private compiled: Compiled[];
  private loads = 0;
  /** The load started last. */
  private latest: Promise<void> = Promise.resolve();

  constructor(
    private readonly repo: PoliciesRepo,
    private readonly adminSpiffeId: string,
  ) {
    this.compiled = [this.builtinAdmin()].map((p) => this.compile(p));
  }

  builtinAdmin(): Policy {
    return {
      name: BUILTIN_ADMIN_POLICY,
      spiffe_id: this.adminSpiffeId,
      paths: ['**'],
      permissions: ['read', 'list', 'write', 'delete', 'admin', 'metrics'],
      created_at: '',
      updated_at: '',
      builtin: true,
    };
  }

  private compile(p: Policy): Compiled {
    return {
      // The admin ID is an exact ID, never a glob.
      id: p.builtin ? new RegExp(`^${p.spiffe_id.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}$`) : compileGlob(p.spiffe_id),
      globs: p.paths,
      paths: p.paths.map(compileGlob),
      permissions: new Set(p.permissions),
    };
  }

  /**
   * (Re)reads every policy. Of overlapping loads, the one started last wins;
   * one it overtook resolves only once the winner is in force (or failed):
   * a writer's reload is often overtaken by the one its own change notice
   * starts, and its caller's next request must see the change.
   */
  async load(): Promise<void> {
    const n = ++this.loads;
    const mine = this.repo.all().then((stored) => {
      if (n === this.loads) this.compiled = [this.builtinAdmin(), ...stored].map((p) => this.compile(p));
    });
    this.latest = mine;
    let waited = mine;
    await mine;
    while (this.latest !== waited) await (waited = this.latest);
  }

  private policies(): Compiled[] {
    return this.compiled;
  }

  private matching(principal: Principal): Compiled[] {
    // SPIFFE policies speak only about SPIFFE identities.
    if (principal.kind !== 'spiffe') return [];
    return this.policies().filter((p) => p.id.test(principal.spiffeId));
  }

  allows(principal: Principal, action: Permission, path: string): boolean {
    return this.matching(principal).some((p) => p.permissions.has(action) && p.paths.some((re) => re.test(path)));
  }

  allowsGlobal(principal: Principal, action: 'admin' | 'metrics'): boolean {
    return this.mayEver(principal, action);
  }

  mayEver(principal: Principal, action: Permission): boolean {
    return this.matching(principal).some((p) => p.permissions.has(action));
  }

  globs(principal: Principal, action: Permission): string[] {
    return this.matching(principal).flatMap((p) => (p.permissions.has(action) ? p.globs : []));
  }
}
