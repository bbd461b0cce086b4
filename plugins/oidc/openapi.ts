import { ERRORS, adminCrud, document, healthPaths, json, listParams, nameParam, pathParam, versionParam, type Paths } from '../../nexus/http/openapi.js';

const issuer = {
  type: 'object',
  required: ['issuer', 'audiences'],
  properties: {
    issuer: { type: 'string', format: 'uri' },
    audiences: { type: 'array', items: { type: 'string' } },
    algorithms: { type: 'array', items: { type: 'string' } },
    jwks_uri: { type: 'string', format: 'uri' },
    max_token_age_s: { type: 'integer' },
  },
};

const role = {
  type: 'object',
  required: ['issuer', 'paths', 'permissions'],
  properties: {
    issuer: { type: 'string' },
    bound_claims: { type: 'object' },
    bound_claims_glob: { type: 'object', additionalProperties: { type: 'string' } },
    paths: { type: 'array', items: { type: 'string' } },
    permissions: { type: 'array', items: { enum: ['read', 'list', 'write'] } },
    token_ttl_s: { type: 'integer', maximum: 3600 },
  },
};

/** Issuer and role admin, on the mTLS port. */
export function oidcAdminPaths(): Paths {
  return {
    '/v1/oidc/issuers': { get: { summary: 'list trusted issuers (admin)', responses: { '200': json('issuers', { type: 'object' }), ...ERRORS } } },
    '/v1/oidc/issuers/{name}': adminCrud('issuer', issuer),
    '/v1/oidc/roles': { get: { summary: 'list roles (admin)', responses: { '200': json('roles', { type: 'object' }), ...ERRORS } } },
    '/v1/oidc/roles/{name}': adminCrud('role', role),
    '/v1/oidc/roles/{name}:revoke-tokens': {
      post: { summary: 'revoke every exchanged token of a role (admin)', parameters: [nameParam], responses: { '200': json('how many', { type: 'object', properties: { revoked: { type: 'integer' } } }), ...ERRORS } },
    },
  };
}

/** The OIDC port: nothing else exists there. */
export function oidcPortDocument() {
  return document(
    'Nexus OIDC port',
    'CI pipelines: Authorization: Bearer <JWT from the CI platform, or a token from /v1/auth/token>. A 401 says only that the token was not accepted.',
    {
      '/v1/secrets': { get: { summary: 'list paths a matching role grants `list` on', parameters: listParams, responses: { '200': json('a page', { $ref: '#/components/schemas/ListPage' }), ...ERRORS } } },
      '/v1/secrets/{path}': {
        get: { summary: 'read, if a matching role grants read', parameters: [pathParam, versionParam], responses: { '200': json('the secret', { $ref: '#/components/schemas/SecretVersion' }), ...ERRORS } },
        put: {
          summary: 'write, only if a role grants write explicitly',
          parameters: [pathParam],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/PutSecret' } } } },
          responses: { '200': json('new version', { $ref: '#/components/schemas/PutResult' }), '201': json('created', { $ref: '#/components/schemas/PutResult' }), ...ERRORS },
        },
      },
      '/v1/whoami': { get: { summary: 'issuer, subject, matched roles, effective grants', responses: { '200': json('who', { type: 'object' }), ...ERRORS } } },
      '/v1/auth/token': {
        post: {
          summary: 'exchange a JWT for an opaque token with the same grants',
          security: [],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['jwt'], properties: { jwt: { type: 'string', maxLength: 16384 } } } } } },
          responses: { '200': json('token', { type: 'object', required: ['token', 'expires_in'], properties: { token: { type: 'string' }, expires_in: { type: 'integer', maximum: 3600 } } }), ...ERRORS },
        },
      },
      ...healthPaths(),
    },
    { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or exchanged token' } },
  );
}
