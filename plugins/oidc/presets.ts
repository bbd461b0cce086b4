/**
 * Claims that name a tenant on public CI platforms: a role must bind one, or
 * anyone with an account there could mint a token that matches it. (No
 * imports: Pilot uses this too.)
 */
export const TENANT_CLAIM_PRESETS = {
  github: ['repository', 'repository_owner', 'repository_id', 'sub'],
  gitlab: ['project_path', 'namespace_path', 'project_id', 'sub'],
} as const;
