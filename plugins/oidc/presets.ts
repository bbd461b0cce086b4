/**
 * Claims that name a tenant on public CI platforms: a role must bind one, or
 * anyone with an account there could mint a token that matches it. (No
 * imports: Pilot uses this too.)
 */
export const TENANT_CLAIM_PRESETS = {
  github: ['repository', 'repository_owner', 'repository_id', 'repository_owner_id', 'sub'],
  gitlab: ['project_path', 'namespace_path', 'project_id', 'namespace_id', 'sub'],
} as const;

/**
 * Tenant claims that carry a name, and the claim with the same tenant's
 * immutable id. A name is recycled when a repository or group is deleted and
 * another is created under it (or renamed into it); the id never is.
 */
export const ID_CLAIM_OF: Readonly<Record<string, string>> = {
  repository: 'repository_id',
  repository_owner: 'repository_owner_id',
  project_path: 'project_id',
  namespace_path: 'namespace_id',
};
const ID_CLAIMS = new Set(Object.values(ID_CLAIM_OF));

/**
 * GitHub's `sub`, in both forms: `repo:OWNER/REPO:...` and, for repositories
 * created or renamed since 2026-07-15, `repo:OWNER@OWNER_ID/REPO@REPO_ID:...`.
 * Null for any other shape.
 */
export function githubSubject(sub: string): { owner: string; repo: string; ownerId: string | null; repoId: string | null; rest: string } | null {
  const m = /^repo:([^/@:]+)(?:@(\d+))?\/([^/@:]+)(?:@(\d+))?:(.*)$/.exec(sub);
  if (!m) return null;
  return { owner: m[1]!, ownerId: m[2] ?? null, repo: m[3]!, repoId: m[4] ?? null, rest: m[5]! };
}

/** Whether a bound `sub` value (exact, or a glob's literal start) names its repository by id. */
function subBindsId(value: string): boolean {
  return /^repo:[^/@:]+@\d+\/[^/@:]+@\d+:/.test(value);
}

interface RoleBindings {
  name?: string;
  bound_claims: Record<string, unknown>;
  bound_claims_glob: Record<string, string>;
}

/**
 * Warnings for a role that binds its tenant only by a mutable name where the
 * issuer offers an id claim. Never a refusal: the name-only role works, and
 * some tokens (older repositories' `sub`) carry no id form yet.
 */
export function roleLint(role: RoleBindings, issuer: { name: string; tenant_claims: readonly string[] }): string[] {
  const bound = [...Object.keys(role.bound_claims), ...Object.keys(role.bound_claims_glob)];
  if (bound.some((k) => ID_CLAIMS.has(k))) return [];
  const sub = role.bound_claims.sub ?? role.bound_claims_glob.sub;
  if (sub !== undefined && (Array.isArray(sub) ? sub : [sub]).every((v) => typeof v === 'string' && subBindsId(v))) return [];
  const offered = issuer.tenant_claims.filter((c) => ID_CLAIMS.has(c));
  if (offered.length === 0) return [];
  const names = bound.filter((k) => k in ID_CLAIM_OF || k === 'sub');
  if (names.length === 0) return [];
  const ids = names.map((k) => ID_CLAIM_OF[k]).filter((k): k is string => k !== undefined && offered.includes(k));
  const suggest = ids.length ? ids : offered;
  const who = role.name ? `role ${role.name}` : 'the role';
  return [
    `${who} binds its tenant only by name (${names.join(', ')}): a repository or group deleted and recreated under that name, or renamed into it, would match; ` +
      `issuer ${issuer.name} offers ${suggest.join(', ')}: bind ${suggest.length > 1 ? 'them' : 'it'} instead`,
  ];
}

/**
 * `pilot oidc role put --preset github`: the bindings for one repository.
 * With its ids, the role binds the ids (a recreated repository has new ones)
 * and not `sub`, so both `sub` forms match; with the name only, it binds the
 * name and says so.
 */
export function githubRoleBindings(o: { repo: string; repoId?: string; ownerId?: string }): { bound_claims: Record<string, string>; warnings: string[] } {
  if (!/^[^/\s]+\/[^/\s]+$/.test(o.repo)) throw new Error(`--repo must be OWNER/REPO, got ${JSON.stringify(o.repo)}`);
  for (const [flag, v] of [['--repo-id', o.repoId], ['--owner-id', o.ownerId]] as const) {
    if (v !== undefined && !/^\d{1,20}$/.test(v)) throw new Error(`${flag} must be a number, got ${JSON.stringify(v)}`);
  }
  if (o.repoId === undefined) {
    if (o.ownerId !== undefined) throw new Error('--owner-id needs --repo-id');
    return {
      bound_claims: { repository: o.repo },
      warnings: [`binding ${o.repo} by name only: a repository recreated under this name would match. Pass --repo-id (and --owner-id) to bind its immutable ids (gh api repos/${o.repo} --jq '.id, .owner.id')`],
    };
  }
  return { bound_claims: { repository_id: o.repoId, ...(o.ownerId === undefined ? {} : { repository_owner_id: o.ownerId }) }, warnings: [] };
}
