import { OAuth2Server } from 'oauth2-mock-server';

export interface TestIdp {
  server: OAuth2Server;
  url: string;
  /** A token signed by the IdP's current key, with `claims` merged into its payload. */
  token(claims: Record<string, unknown>, opts?: { expiresIn?: number; kid?: string; header?: Record<string, unknown> }): Promise<string>;
  stop(): Promise<void>;
}

/** A real OIDC issuer on loopback (oauth2-mock-server): discovery, JWKS and signed tokens over HTTP. */
export async function startIdp(): Promise<TestIdp> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256', { kid: 'key-1' });
  await server.start(0, '127.0.0.1');
  const url = server.issuer.url!;
  return {
    server,
    url,
    token: (claims, opts = {}) =>
      server.issuer.buildToken({
        kid: opts.kid,
        expiresIn: opts.expiresIn ?? 600,
        scopesOrTransform: (header, payload) => {
          Object.assign(header, opts.header ?? {});
          Object.assign(payload, claims);
          for (const [k, v] of Object.entries(claims)) if (v === undefined) delete (payload as Record<string, unknown>)[k];
        },
      }),
    stop: () => server.stop(),
  };
}

/** GitHub Actions-shaped claims for `repository` on `ref`. */
export function github(repository: string, ref = 'refs/heads/main', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const [owner] = repository.split('/');
  return {
    sub: `repo:${repository}:ref:${ref}`,
    aud: 'nexus',
    repository,
    repository_owner: owner,
    ref,
    ref_type: 'branch',
    workflow: 'deploy',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    ...extra,
  };
}

/** GitLab CI-shaped claims. */
export function gitlab(projectPath: string, ref = 'main', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: `project_path:${projectPath}:ref_type:branch:ref:${ref}`,
    aud: 'nexus',
    project_path: projectPath,
    namespace_path: projectPath.split('/').slice(0, -1).join('/'),
    ref,
    ref_protected: 'true',
    ...extra,
  };
}
