import type { Authorizer, Permission, Principal } from '../auth/principal.js';
import type { PoliciesRepo } from '../storage/policies-repo.js';
import { compileGlob } from './glob.js';
import { BUILTIN_ADMIN_POLICY, type Policy } from './types.js';

interface Compiled {
  id: RegExp;
  paths: RegExp[];
  permissions: ReadonlySet<Permission>;
}

/**
 * SPIFFE policy decisions: default deny, permissions are the union over every
 * policy whose spiffe_id glob matches. Compiled policies are cached and
 * rebuilt when a policy changes (invalidate()).
 */
export class PolicyEngine implements Authorizer {
  private compiled: Compiled[] | null = null;

  constructor(
    private readonly repo: PoliciesRepo,
    private readonly adminSpiffeId: string,
  ) {}

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

  invalidate(): void {
    this.compiled = null;
  }

  private policies(): Compiled[] {
    if (!this.compiled) {
      this.compiled = [this.builtinAdmin(), ...this.repo.all()].map((p) => ({
        // The admin ID is an exact ID, never a glob.
        id: p.builtin ? new RegExp(`^${p.spiffe_id.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}$`) : compileGlob(p.spiffe_id),
        paths: p.paths.map(compileGlob),
        permissions: new Set(p.permissions),
      }));
    }
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
}
