import { body, ERRORS, adminCrud, document, healthPaths, json, listParams, nameParam, pathParam, patchOp, rollbackOp, versionParam, type Paths } from '../../nexus/http/openapi.js';
import { ListPage, PutResult, PutSecretInput, SecretVersion } from '../../nexus/secrets/schema.js';
import { Issuer, IssuerInput, IssuerList, RevokeResult, Role, RoleInput, RoleList, TokenRequest, TokenResponse, Whoami } from './schema.js';

/** Issuer and role admin, on the mTLS port. */
export function oidcAdminPaths(): Paths {
  return {
    '/v1/oidc/issuers': { get: { operationId: 'listIssuers', summary: 'list trusted issuers (admin)', responses: { '200': json('issuers', IssuerList), ...ERRORS } } },
    '/v1/oidc/issuers/{name}': adminCrud('issuer', IssuerInput, Issuer),
    '/v1/oidc/roles': { get: { operationId: 'listRoles', summary: 'list roles (admin)', responses: { '200': json('roles', RoleList), ...ERRORS } } },
    '/v1/oidc/roles/{name}': adminCrud('role', RoleInput, Role),
    '/v1/oidc/roles/{name}:revoke-tokens': {
      post: { operationId: 'revokeRoleTokens', summary: 'revoke every exchanged token of a role (admin)', parameters: [nameParam], responses: { '200': json('how many', RevokeResult), ...ERRORS } },
    },
  };
}

/** The OIDC port: nothing else exists there. */
export function oidcPortDocument() {
  return document(
    'Nexus OIDC port',
    'CI pipelines: Authorization: Bearer <JWT from the CI platform, or a token from /v1/auth/token>. A 401 says only that the token was not accepted.',
    {
      '/v1/secrets': { get: { operationId: 'listSecrets', summary: 'list paths a matching role grants `list` on', parameters: listParams, responses: { '200': json('a page', ListPage), ...ERRORS } } },
      '/v1/secrets/{path}': {
        get: { operationId: 'readSecret', summary: 'read, if a matching role grants read', parameters: [pathParam, versionParam], responses: { '200': json('the secret', SecretVersion), ...ERRORS } },
        put: {
          operationId: 'writeSecret',
          summary: 'write, only if a role grants write explicitly',
          parameters: [pathParam],
          requestBody: body(PutSecretInput),
          responses: { '200': json('new version', PutResult), '201': json('created', PutResult), ...ERRORS },
        },
        patch: { ...patchOp, summary: `${patchOp.summary}; only if a role grants write explicitly` },
      },
      '/v1/secrets/{path}:rollback': { post: { ...rollbackOp, summary: `${rollbackOp.summary}; only if a role grants both explicitly` } },
      '/v1/whoami': { get: { operationId: 'whoami', summary: 'issuer, subject, matched roles, effective grants', responses: { '200': json('who', Whoami), ...ERRORS } } },
      '/v1/auth/token': {
        post: {
          operationId: 'exchangeToken',
          summary: 'exchange a JWT for an opaque token with the same grants',
          security: [],
          requestBody: body(TokenRequest),
          responses: { '200': json('token', TokenResponse), ...ERRORS },
        },
      },
      ...healthPaths(),
    },
    { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or exchanged token' } },
  );
}
