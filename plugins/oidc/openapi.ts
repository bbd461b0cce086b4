import { body, ERRORS, adminCrud, document, healthPaths, json, listParams, nameParam, pathParam, patchOp, rollbackOp, versionParam, type Paths } from '../../nexus/http/openapi.js';
import { ListPage, MAX_DATA_PAGE, PutResult, PutSecretInput, SecretDataPage, SecretVersion } from '../../nexus/secrets/schema.js';
import { VaultErrors, VaultHealth, VaultKeyList, VaultKvMetadata, VaultLoginRequest, VaultLoginResponse, VaultMountResponse, VaultSecretResponse, VaultTokenLookup } from './vault-schema.js';
import { SUMS, TOOLS, TOOLS_PREFIX } from './tools.js';
import { RoleTestInput, RoleTestResult } from './role-test-schema.js';
import { ObjectName } from '../../nexus/policy/schema.js';
import { CiEventBody, CiEventResult, Issuer, IssuerList, IssuerRequest, IssuerRevokeInput, IssuerRevokeResult, RevokeResult, RoleInput, RoleList, RoleWritten, TokenRequest, TokenResponse, Whoami } from './schema.js';

/** Issuer and role admin, on the mTLS port. */
export function oidcAdminPaths(): Paths {
  return {
    '/v1/oidc/issuers': { get: { operationId: 'listIssuers', summary: 'list trusted issuers (admin)', responses: { '200': json('issuers', IssuerList), ...ERRORS } } },
    '/v1/oidc/issuers/{name}': adminCrud('issuer', IssuerRequest, Issuer),
    '/v1/oidc/roles': { get: { operationId: 'listRoles', summary: 'list roles (admin)', responses: { '200': json('roles', RoleList), ...ERRORS } } },
    '/v1/oidc/roles/{name}': adminCrud('role', RoleInput, RoleWritten),
    '/v1/oidc/roles:test': {
      post: {
        operationId: 'testRoles',
        summary: 'dry run (admin): what the OIDC port decides for a sample JWT (every token check) or for claims under an issuer, role by role, and why',
        requestBody: body(RoleTestInput),
        responses: { '200': json('the explanation', RoleTestResult), ...ERRORS },
      },
    },
    '/v1/oidc/issuers/{name}:revoke-tokens': {
      post: {
        operationId: 'revokeIssuerTokens',
        summary: 'revoke every exchanged token of an issuer, or of one of its roles (admin; for a leaked IdP key)',
        parameters: [nameParam],
        requestBody: { ...body(IssuerRevokeInput), required: false },
        responses: { '200': json('how many', IssuerRevokeResult), ...ERRORS },
      },
    },
    '/v1/oidc/roles/{name}:revoke-tokens': {
      post: { operationId: 'revokeRoleTokens', summary: 'revoke every exchanged token of a role (admin)', parameters: [nameParam], responses: { '200': json('how many', RevokeResult), ...ERRORS } },
    },
  };
}

/** The OIDC port: nothing else exists there. */
export function oidcPortDocument(vaultCompat: boolean) {
  return document(
    'Nexus OIDC port',
    'CI pipelines: Authorization: Bearer <JWT from the CI platform, or a token from /v1/auth/token>. A 401 says only that the token was not accepted.',
    {
      '/v1/secrets': {
        get: {
          operationId: 'listSecrets',
          summary: `list paths a matching role grants \`list\` on; with include=data, the latest data of each secret under the prefix a role grants \`read\` on (at most ${MAX_DATA_PAGE} a page, one audit record each)`,
          parameters: [...listParams, { name: 'include', in: 'query', schema: { type: 'string', enum: ['data'] } }],
          responses: { '200': json('a page of paths, or with include=data of secrets', { oneOf: [ListPage, SecretDataPage] }), ...ERRORS },
        },
      },
      '/v1/secrets/{path}': {
        get: { operationId: 'readSecret', summary: 'read, if a matching role grants read', parameters: [pathParam, versionParam], responses: { '200': json('the secret', SecretVersion), ...ERRORS } },
        put: {
          operationId: 'writeSecret',
          summary: 'write, only if a role grants write explicitly (cas needs read too; without read: 200 {path} only)',
          parameters: [pathParam],
          requestBody: body(PutSecretInput),
          responses: { '200': json('new version', PutResult), '201': json('created', PutResult), ...ERRORS },
        },
        patch: { ...patchOp, summary: `${patchOp.summary}; only if roles grant both explicitly` },
      },
      '/v1/secrets/{path}:rollback': { post: { ...rollbackOp, summary: `${rollbackOp.summary}; only if a role grants both explicitly` } },
      '/v1/whoami': { get: { operationId: 'whoami', summary: 'issuer, subject, matched roles, effective grants', responses: { '200': json('who', Whoami), ...ERRORS } } },
      '/v1/auth/token/revoke-self': {
        post: {
          operationId: 'revokeSelf',
          summary: 'revoke the exchanged token presented (Bearer, or X-Vault-Token where the Vault routes are on); a job gives it back when it ends',
          responses: { '204': { description: 'revoked, on every replica' }, ...ERRORS },
        },
        put: {
          operationId: 'revokeSelfPut',
          summary: 'the same, as vault token revoke -self sends it',
          responses: { '204': { description: 'revoked, on every replica' }, ...ERRORS },
        },
      },
      '/v1/auth/token': {
        post: {
          operationId: 'exchangeToken',
          summary: 'exchange a JWT for an opaque token with the same grants',
          security: [],
          requestBody: body(TokenRequest),
          responses: { '200': json('token', TokenResponse), ...ERRORS },
        },
      },
      ...ciEventPaths(),
      ...toolPaths(),
      ...(vaultCompat ? vaultPaths() : {}),
      ...healthPaths(),
    },
    { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or exchanged token' } },
  );
}

/** The CI platforms' end-of-work webhooks: authenticated by the issuer's webhook secret, not by a bearer. */
function ciEventPaths(): Paths {
  const issuerParam = { name: 'issuer', in: 'query', required: true, description: 'the issuer whose webhook_secret authenticates the event', schema: ObjectName };
  const header = (name: string, description: string, required = false) => ({ name, in: 'header', required, description, schema: { type: 'string' } });
  const responses = { '200': json('accepted: what the event did', CiEventResult), ...ERRORS };
  return {
    '/v1/ci/events/github': {
      post: {
        operationId: 'githubWorkflowRunEvent',
        summary:
          'GitHub webhook (content type application/json): a workflow_run event with action completed revokes every exchanged token of the issuer minted from a JWT whose repository, run_id and run_attempt are the run\'s; other events are accepted and ignored. 401 for a bad or missing signature or an issuer without webhook_secret; a replayed delivery changes nothing',
        security: [],
        parameters: [
          issuerParam,
          header('X-Hub-Signature-256', 'sha256=<hex HMAC-SHA256 of the raw body under the webhook secret>', true),
          header('X-GitHub-Event', 'only workflow_run ends anything', true),
          header('X-GitHub-Delivery', 'the delivery id (required for workflow_run completed)'),
        ],
        requestBody: body(CiEventBody),
        responses,
      },
    },
    '/v1/ci/events/gitlab': {
      post: {
        operationId: 'gitlabJobEvent',
        summary:
          'GitLab webhook: a Job Hook for a finished job (build_status success, failed, canceled or skipped) revokes every exchanged token of the issuer minted from a JWT whose project_path and job_id are the job\'s; other events are accepted and ignored. 401 for a wrong or missing X-Gitlab-Token or an issuer without webhook_secret; a replayed delivery changes nothing',
        security: [],
        parameters: [
          issuerParam,
          header('X-Gitlab-Token', 'the webhook secret token, compared in constant time', true),
          header('X-Gitlab-Event', 'only Job Hook ends anything', true),
          header('Idempotency-Key', 'the delivery id kept across retries (GitLab 17.4+)'),
          header('X-Gitlab-Event-UUID', 'the delivery id otherwise'),
        ],
        requestBody: body(CiEventBody),
        responses,
      },
    },
  };
}

const vaultError = (description: string) => json(description, VaultErrors);
const VAULT_ERRORS = {
  '400': vaultError('bad input'),
  '401': vaultError('the token was not accepted'),
  '403': vaultError('denied'),
  '404': vaultError('not found'),
  '413': vaultError('too large'),
  '429': vaultError('rate limited (Retry-After)'),
  '503': vaultError('not ready, or the audit trail is unwritable'),
};
const vaultToken = { name: 'X-Vault-Token', in: 'header', required: true, description: 'the client_token of /v1/auth/jwt/login', schema: { type: 'string' } };
const listParam = (required: boolean) => ({
  name: 'list',
  in: 'query',
  required,
  description: "true (or 1): list one level. Vault's LIST method is the same request, served too, but Node's HTTP parser refuses it on the wire: send GET ?list=true, as the vault CLI does",
  schema: { type: 'string', enum: ['true', '1'] },
});
const SECRET_PATH = 'the path the CLI was given, under the mount';
const MOUNT_PATH = 'a mount, then the path the CLI was given';
const preflight = (operationId: string, summary: string, path: string) => ({
  get: {
    operationId,
    summary,
    security: [],
    parameters: [{ ...pathParam, description: path }, vaultToken],
    responses: { '200': json('the mount', VaultMountResponse), ...VAULT_ERRORS },
  },
});

/** The Vault-compatible CI subset (NEXUS_OIDC_VAULT_COMPAT, on by default). */
export function vaultPaths(): Paths {
  const login = {
    summary: 'Vault JWT login: the same exchange as /v1/auth/token, restricted to one role; the body is JSON whatever its Content-Type',
    security: [],
    requestBody: body(VaultLoginRequest),
    responses: { '200': json('a Vault auth block', VaultLoginResponse), ...VAULT_ERRORS },
  };
  return {
    '/v1/auth/jwt/login': { post: { operationId: 'vaultJwtLogin', ...login }, put: { operationId: 'vaultJwtLoginPut', ...login, summary: `${login.summary} (PUT: vault write auth/jwt/login)` } },
    '/v1/sys/internal/ui/mounts/secret/{path}': preflight('vaultKvPreflight', 'Vault KV preflight (vault kv get|list|metadata): the mount `secret` is KV v2', SECRET_PATH),
    '/v1/sys/mounts-all/secret/{path}': preflight('vaultKvPreflightMountsAll', 'the same preflight as newer vault CLIs ask it', SECRET_PATH),
    '/v1/sys/internal/ui/mounts/{path}': preflight('vaultMountPreflight', 'the preflight naming only a mount: `secret` (vault kv list secret) is KV v2, any other 403 as Vault answers', MOUNT_PATH),
    '/v1/sys/mounts-all/{path}': preflight('vaultMountPreflightMountsAll', 'the same, as newer vault CLIs ask it', MOUNT_PATH),
    '/v1/secret/metadata': {
      get: {
        operationId: 'vaultKvListRoot',
        summary: 'Vault KV v2 list of the top level (vault kv list secret), if a role of the token grants list; 404 {"errors":[]} when nothing is listable',
        security: [],
        parameters: [listParam(true), vaultToken],
        responses: { '200': json('the keys', VaultKeyList), ...VAULT_ERRORS },
      },
    },
    '/v1/secret/metadata/{path}': {
      get: {
        operationId: 'vaultKvMetadata',
        summary: 'Vault KV v2 metadata (versions, no values) if the role grants read; with ?list=true one level of keys under the path if it grants list (404 {"errors":[]} when none)',
        security: [],
        parameters: [pathParam, listParam(false), vaultToken],
        responses: { '200': json('metadata, or the keys with ?list=true', { oneOf: [VaultKvMetadata, VaultKeyList] }), ...VAULT_ERRORS },
      },
    },
    '/v1/secret/data/{path}': {
      get: {
        operationId: 'vaultKvRead',
        summary: 'Vault KV v2 read, if the role of the token grants read',
        security: [],
        parameters: [pathParam, versionParam, vaultToken],
        responses: { '200': json('the secret', VaultSecretResponse), ...VAULT_ERRORS },
      },
    },
    '/v1/auth/token/lookup-self': {
      get: {
        operationId: 'vaultTokenLookupSelf',
        summary: 'Vault token lookup: the role, ttl, accessor; never the token itself',
        security: [],
        parameters: [vaultToken],
        responses: { '200': json('the token', VaultTokenLookup), ...VAULT_ERRORS },
      },
    },
    '/v1/sys/health': {
      get: {
        operationId: 'vaultHealth',
        summary: 'Vault health: 200 when ready, 503 (sealed: true) when not',
        security: [],
        responses: { '200': json('ready', VaultHealth), '503': json('not ready', VaultHealth) },
      },
    },
  };
}

/** GET /v1/tools/FILE: the committed client bundles, no credentials (plugins/oidc/tools.ts). */
export function toolPaths(): Paths {
  const headers = {
    'X-Content-SHA256': { description: 'SHA-256 of the body, hex: what a CI template pins', schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
    ETag: { description: 'the same hash, quoted; If-None-Match with it gets 304', schema: { type: 'string' } },
  };
  const op = (name: string, type: string, summary: string) => ({
    get: {
      operationId: `tool_${name.replace(/[^A-Za-z0-9]/g, '_')}`,
      summary,
      security: [],
      responses: {
        '200': { description: name, headers, content: { [type.split(';')[0]!]: { schema: { type: 'string' } } } },
        '304': { description: 'unchanged (If-None-Match)', headers },
      },
    },
  });
  const what: Record<string, string> = {
    'nexus-ci.mjs': 'the CI client as one file: `node nexus-ci.mjs ...`',
    'pilot.cjs': 'Pilot, the admin CLI, as one file: `node pilot.cjs ...`',
    'workload-api.mjs': 'the SPIFFE Workload API client that nexus-ci.mjs and pilot.cjs load from beside themselves when SPIFFE_ENDPOINT_SOCKET is set',
    'workload.proto': 'the .proto that workload-api.mjs loads from beside itself',
  };
  return {
    ...Object.fromEntries(Object.entries(TOOLS).map(([name, t]) => [`${TOOLS_PREFIX}${name}`, op(name, t.type, what[name]!)])),
    [`${TOOLS_PREFIX}${SUMS}`]: op(SUMS, 'text/plain', 'every tool\'s SHA-256, as `sha256sum -c` reads it'),
  };
}
