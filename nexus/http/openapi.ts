/** OpenAPI 3.1 building blocks shared by both ports' documents. */
export type PathItem = Record<string, unknown>;
export type Paths = Record<string, PathItem>;

const err = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

export const ERRORS = {
  '400': err('bad input (the error names the rule)'),
  '401': err('no or bad credentials'),
  '403': err('denied'),
  '404': err('not found'),
  '409': err('check-and-set conflict'),
  '413': err('too large'),
  '429': err('rate limited (Retry-After)'),
  '503': err('not ready, or the audit trail is unwritable'),
};

export function json(description: string, schema: unknown) {
  return { description, content: { 'application/json': { schema } } };
}

export const pathParam = { name: 'path', in: 'path', required: true, description: 'secret path: 1-32 segments of [A-Za-z0-9._-], at most 512 bytes; never percent-encoded', schema: { type: 'string' } };
export const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' } };
export const versionParam = { name: 'version', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } };

export const SCHEMAS = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: { error: { type: 'object', required: ['code', 'message', 'request_id'], properties: { code: { type: 'string' }, message: { type: 'string' }, request_id: { type: 'string' } } } },
  },
  SecretData: { type: 'object', additionalProperties: { type: 'string' }, description: 'at most 64 KiB encoded' },
  SecretVersion: {
    type: 'object',
    required: ['path', 'version', 'data', 'created_at'],
    properties: { path: { type: 'string' }, version: { type: 'integer' }, data: { $ref: '#/components/schemas/SecretData' }, created_at: { type: 'string', format: 'date-time' } },
  },
  PutSecret: { type: 'object', required: ['data'], properties: { data: { $ref: '#/components/schemas/SecretData' }, cas: { type: 'integer', minimum: 0 } } },
  PutResult: { type: 'object', required: ['path', 'version'], properties: { path: { type: 'string' }, version: { type: 'integer' } } },
  ListPage: { type: 'object', required: ['paths', 'next_cursor'], properties: { paths: { type: 'array', items: { type: 'string' } }, next_cursor: { type: ['string', 'null'] } } },
  Health: { type: 'object', required: ['status'], properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: { type: 'boolean' } } } },
};

export const listParams = [
  { name: 'prefix', in: 'query', schema: { type: 'string' } },
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
  { name: 'cursor', in: 'query', schema: { type: 'string' } },
];

export function healthPaths(withOpenApi = true): Paths {
  return {
    '/healthz': { get: { summary: 'liveness', responses: { '200': json('alive', { $ref: '#/components/schemas/Health' }) } } },
    '/readyz': { get: { summary: 'readiness', responses: { '200': json('ready', { $ref: '#/components/schemas/Health' }), '503': json('not ready', { $ref: '#/components/schemas/Health' }) } } },
    ...(withOpenApi ? { '/openapi.json': { get: { summary: 'this document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } } } } : {}),
  };
}

export function document(title: string, description: string, paths: Paths, securitySchemes: Record<string, unknown>) {
  return {
    openapi: '3.1.0',
    info: { title, version: '1', description },
    paths,
    components: { schemas: SCHEMAS, securitySchemes },
    security: Object.keys(securitySchemes).map((k) => ({ [k]: [] })),
  };
}

/** GET/PUT/DELETE of one named admin object (policies, issuers, roles). */
export function adminCrud(what: string, schema: unknown, deleteNote = ''): PathItem {
  return {
    get: { summary: `a ${what} (admin)`, parameters: [nameParam], responses: { '200': json(what, schema), ...ERRORS } },
    put: { summary: `create or replace a ${what} (admin)`, parameters: [nameParam], requestBody: { required: true, content: { 'application/json': { schema } } }, responses: { '200': json('replaced', schema), '201': json('created', schema), ...ERRORS } },
    delete: { summary: `delete a ${what} (admin${deleteNote})`, parameters: [nameParam], responses: { '204': { description: 'deleted' }, ...ERRORS } },
  };
}

const secretOps = {
  get: { summary: 'read the latest version or ?version=N (deleted or destroyed: 404)', parameters: [pathParam, versionParam], responses: { '200': json('the secret', { $ref: '#/components/schemas/SecretVersion' }), ...ERRORS } },
  put: {
    summary: 'write a new version (cas: the current latest version; 0 = create only)',
    parameters: [pathParam],
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/PutSecret' } } } },
    responses: { '200': json('new version', { $ref: '#/components/schemas/PutResult' }), '201': json('created', { $ref: '#/components/schemas/PutResult' }), ...ERRORS },
  },
  delete: { summary: 'soft delete the latest version or ?version=N', parameters: [pathParam, versionParam], responses: { '204': { description: 'deleted' }, ...ERRORS } },
};

const versionsBody = { required: true, content: { 'application/json': { schema: { type: 'object', required: ['versions'], properties: { versions: { type: 'array', items: { type: 'integer', minimum: 1 } } } } } } };

/** The mTLS port's own routes (plugins add theirs). */
export function mtlsPaths(): Paths {
  const policy = { type: 'object', required: ['spiffe_id', 'paths', 'permissions'], properties: { spiffe_id: { type: 'string' }, paths: { type: 'array', items: { type: 'string' } }, permissions: { type: 'array', items: { enum: ['read', 'list', 'write', 'delete', 'admin', 'metrics'] } } } };
  return {
    '/v1/secrets': { get: { summary: 'list paths the caller may list', parameters: listParams, responses: { '200': json('a page', { $ref: '#/components/schemas/ListPage' }), ...ERRORS } } },
    '/v1/secrets/{path}': secretOps,
    '/v1/secrets/{path}:metadata': {
      get: { summary: 'versions and flags, no values', parameters: [pathParam], responses: { '200': json('metadata', { type: 'object' }), ...ERRORS } },
    },
    '/v1/secrets/{path}:undelete': { post: { summary: 'undelete versions', parameters: [pathParam], requestBody: versionsBody, responses: { '204': { description: 'done' }, ...ERRORS } } },
    '/v1/secrets/{path}:destroy': { post: { summary: 'erase the ciphertext of versions', parameters: [pathParam], requestBody: versionsBody, responses: { '204': { description: 'done' }, ...ERRORS } } },
    '/v1/policies': { get: { summary: 'list SPIFFE policies (admin)', responses: { '200': json('policies', { type: 'object' }), ...ERRORS } } },
    '/v1/policies/{name}': adminCrud('policy', policy, '; not the built-in one'),
    '/metrics': { get: { summary: 'Prometheus text (metrics or admin permission)', responses: { '200': { description: 'text/plain; version=0.0.4' }, ...ERRORS } } },
    ...healthPaths(),
  };
}

export function mtlsDocument(extra: Paths) {
  return document('Nexus mTLS port', 'Humans and services with a SPIFFE X509-SVID (client certificate required at the TLS handshake).', { ...mtlsPaths(), ...extra }, {
    spiffe: { type: 'mutualTLS', description: 'an X509-SVID of the trust domain' },
  });
}
