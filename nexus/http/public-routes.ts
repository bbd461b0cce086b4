/**
 * The operations a caller reaches without any grant, per port, as
 * `METHOD /openapi/path`. These are the only exceptions to "every route
 * refuses a principal no policy or role names"; test/server/every-route-guarded
 * holds every operation of both ports' OpenAPI documents to this list. A new
 * public route is added here, deliberately, or that test fails.
 */
export const PUBLIC_OPERATIONS = {
  /** Any valid SVID of the trust domain (the TLS handshake still requires one). */
  mtls: ['GET /healthz', 'GET /readyz', 'GET /openapi.json'],
  /** No credentials at all; the exchanges authenticate the JWT in their body. */
  oidc: ['GET /healthz', 'GET /readyz', 'GET /openapi.json', 'POST /v1/auth/token', 'POST /v1/auth/jwt/login', 'PUT /v1/auth/jwt/login', 'GET /v1/sys/health',
    // The CI platforms' end-of-work webhooks: authenticated by the issuer's webhook secret (signature or token), not by a grant.
    'POST /v1/ci/events/github', 'POST /v1/ci/events/gitlab',
    // The client bundles (plugins/oidc/tools.ts): what a CI job fetches before it holds any token.
    'GET /v1/tools/nexus-ci.mjs', 'GET /v1/tools/pilot.cjs', 'GET /v1/tools/workload-api.mjs', 'GET /v1/tools/workload.proto', 'GET /v1/tools/SHA256SUMS'],
} as const satisfies Record<'mtls' | 'oidc', readonly string[]>;
