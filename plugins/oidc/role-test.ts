import { BadRequestError, NotFoundError } from '../../nexus/errors.js';
import { parseInput } from '../../nexus/schema.js';
import { explainRoles, explainToken } from './explain.js';
import type { IssuerRegistry } from './issuers.js';
import { RoleTestInput, type RoleTestResult } from './role-test-schema.js';
import type { OidcStore } from './store.js';

/**
 * The dry run behind POST /v1/oidc/roles:test: what the OIDC port would do
 * with a sample token (or with claims, without a signature), role by role,
 * and why. Reads the stored roles, so a role just written is tested at once.
 */
export class RoleTester {
  constructor(
    private readonly registry: IssuerRegistry,
    private readonly store: OidcStore,
  ) {}

  async test(raw: unknown, nowS = Date.now() / 1000): Promise<RoleTestResult> {
    const input = parseInput(RoleTestInput, raw);
    const roles = await this.store.roles();
    if (input.role !== undefined && !roles.some((r) => r.name === input.role)) throw new NotFoundError(`role ${input.role} not found`);
    if (input.jwt !== undefined) {
      const { token, claims, issuer } = await explainToken(input.jwt, this.registry, nowS);
      const verdicts = issuer && claims ? explainRoles(roles, issuer, claims as Record<string, unknown>, input.role) : [];
      return { issuer: issuer?.name ?? null, token, roles: verdicts };
    }
    const issuer = await this.store.issuer(input.issuer!);
    if (!issuer) throw new NotFoundError(`issuer ${input.issuer} not found`);
    const only = input.role === undefined ? undefined : roles.find((r) => r.name === input.role)!;
    if (only && only.issuer !== issuer.name) throw new BadRequestError('role', `role ${only.name} is of issuer ${only.issuer}, not ${issuer.name}`);
    return { issuer: issuer.name, roles: explainRoles(roles, issuer, input.claims!, input.role) };
  }
}
