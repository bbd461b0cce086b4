import { ListLimit, ListPage, PatchSecretInput, PutResult, PutSecretInput, RollbackInput, SecretMetadata, SecretVersion, VersionsInput, VersionsOutcome } from '../secrets/schema.js';
import { ObjectName, Policy, PolicyInput, PolicyList } from '../policy/schema.js';
import { documentedAs, z } from '../schema.js';
import { ErrorBody } from './errors.js';
import { Health } from './health.js';
import { SignalList } from '../signals/schema.js';

/**
 * OpenAPI 3.1 documents of both ports, built from the same zod schemas that
 * validate requests and type responses: a path item names its bodies by
 * schema, and document() turns every schema into a component (request
 * bodies as their input form, responses as their output form).
 */
export type PathItem = Record<string, unknown>;
export type Paths = Record<string, PathItem>;
type Schema = z.core.$ZodType;
type Json = Record<string, unknown>;

const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && '_zod' in v;

const err = (description: string) => json(description, ErrorBody);

export const ERRORS = {
  '400': err('bad input (the error names the rule)'),
  '401': err('no or bad credentials'),
  '403': err('denied'),
  '404': err('not found'),
  '409': err('check-and-set conflict'),
  '413': err('too large'),
  '429': err('rate limited (Retry-After)'),
  '503': err('not ready, sealed (code sealed), or the audit trail is unwritable'),
};

/** A JSON response: a schema, or (for what has no schema of its own) a JSON Schema literal. */
export function json(description: string, schema: Schema | Json) {
  return { description, content: { 'application/json': { schema } } };
}

/** A required JSON request body. */
export function body(schema: Schema) {
  return { required: true, content: { 'application/json': { schema } } };
}

export const pathParam = { name: 'path', in: 'path', required: true, description: 'secret path: 1-32 segments of [A-Za-z0-9._-], at most 512 bytes; never percent-encoded', schema: { type: 'string' } };
export const nameParam = { name: 'name', in: 'path', required: true, schema: ObjectName };
export const versionParam = { name: 'version', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } };

export const listParams = [
  { name: 'prefix', in: 'query', schema: { type: 'string' } },
  { name: 'limit', in: 'query', schema: ListLimit },
  { name: 'cursor', in: 'query', schema: { type: 'string' } },
];

export function healthPaths(withOpenApi = true): Paths {
  return {
    '/healthz': { get: { operationId: 'healthz', summary: 'liveness', responses: { '200': json('alive', Health) } } },
    '/readyz': { get: { operationId: 'readyz', summary: 'readiness', responses: { '200': json('ready', Health), '503': json('not ready', Health) } } },
    ...(withOpenApi ? { '/openapi.json': { get: { operationId: 'openapi', summary: 'this document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } } } } : {}),
  };
}

const components: Record<'input' | 'output', Record<string, Json> | undefined> = { input: undefined, output: undefined };

/** Every schema with an id, as JSON Schema in one form; ids refer to each other as components. */
function allComponents(io: 'input' | 'output', id?: string): Record<string, Json> {
  // Rebuilt when a schema defined since the last build is asked for.
  if (components[io] && (id === undefined || id in components[io])) return components[io];
  const out = z.toJSONSchema(z.globalRegistry, {
    io,
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
    unrepresentable: 'any',
    // A value checked by a rule function is documented by the schema it names.
    override: (ctx) => {
      const doc = documentedAs.get(ctx.zodSchema);
      if (!doc) return;
      for (const k of Object.keys(ctx.jsonSchema)) delete (ctx.jsonSchema as Json)[k];
      Object.assign(ctx.jsonSchema, { $ref: `#/components/schemas/${idOf(doc)}` });
    },
  });
  const schemas: Record<string, Json> = {};
  for (const [id, s] of Object.entries(out.schemas)) {
    const { $schema: _s, $id: _i, ...rest } = s as Json;
    schemas[id] = rest;
  }
  return (components[io] = schemas);
}

function idOf(schema: Schema): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error(`an OpenAPI body schema needs an id (.meta({ id })): ${JSON.stringify(z.toJSONSchema(schema, { unrepresentable: 'any' })).slice(0, 120)}`);
  return id;
}

/** The ids a JSON Schema refers to. */
function refsOf(v: unknown, out: Set<string>): Set<string> {
  if (Array.isArray(v)) for (const x of v) refsOf(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')) out.add(x.slice('#/components/schemas/'.length));
      else refsOf(x, out);
    }
  }
  return out;
}

/**
 * Replaces each schema in a path tree by a $ref (noting which form it needs:
 * request bodies and parameters in their input form, responses in output).
 */
function resolve(v: unknown, io: 'input' | 'output', used: Map<string, 'input' | 'output'>): unknown {
  if (isSchema(v)) {
    const id = z.globalRegistry.get(v)?.id;
    if (!id) {
      const { $schema: _s, ...inline } = z.toJSONSchema(v, { io, unrepresentable: 'any' }) as Json;
      return inline;
    }
    note(id, io, used);
    return { $ref: `#/components/schemas/${id}` };
  }
  if (Array.isArray(v)) return v.map((x) => resolve(x, io, used));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, k === 'responses' ? 'output' : k === 'requestBody' || k === 'parameters' ? 'input' : io, used)]));
  }
  return v;
}

function note(id: string, io: 'input' | 'output', used: Map<string, 'input' | 'output'>): void {
  const had = used.get(id);
  if (had === io) return;
  allComponents(io, id);
  if (had && JSON.stringify(allComponents('input')[id]) !== JSON.stringify(allComponents('output')[id])) {
    throw new Error(`schema ${id} is used as a request and as a response but differs between the two: give the request its own schema`);
  }
  used.set(id, io);
  for (const ref of refsOf(allComponents(io)[id], new Set())) note(ref, io, used);
}

export function document(title: string, description: string, paths: Paths, securitySchemes: Record<string, unknown>) {
  const used = new Map<string, 'input' | 'output'>();
  const resolved = resolve(paths, 'output', used) as Paths;
  const schemas = Object.fromEntries([...used].sort(([a], [b]) => a.localeCompare(b)).map(([id, io]) => [id, allComponents(io)[id]!]));
  return {
    openapi: '3.1.0',
    info: { title, version: '1', description },
    // Relative: each port serves the document that describes it.
    servers: [{ url: '/', description: 'the port that serves this document' }],
    paths: resolved,
    components: { schemas, securitySchemes },
    security: Object.keys(securitySchemes).map((k) => ({ [k]: [] })),
  };
}

/** GET/PUT/DELETE of one named admin object (policies, issuers, roles). */
export function adminCrud(what: string, input: Schema, output: Schema, deleteNote = ''): PathItem {
  const op = what.replace(/(^|[ -])(\w)/g, (_m, _s, c: string) => c.toUpperCase());
  return {
    get: { operationId: `get${op}`, summary: `a ${what} (admin)`, parameters: [nameParam], responses: { '200': json(what, output), ...ERRORS } },
    put: {
      operationId: `put${op}`,
      summary: `create or replace a ${what} (admin)`,
      parameters: [nameParam],
      requestBody: body(input),
      responses: { '200': json('replaced', output), '201': json('created', output), ...ERRORS },
    },
    delete: { operationId: `delete${op}`, summary: `delete a ${what} (admin${deleteNote})`, parameters: [nameParam], responses: { '204': { description: 'deleted' }, ...ERRORS } },
  };
}

const versionsParam = { name: 'versions', in: 'query', required: false, description: 'several versions, comma-separated (not with version)', schema: { type: 'string', pattern: '^[0-9]+(,[0-9]+)*$' } };
const versionsDone = { '204': { description: 'every named version was changed' }, '200': json('some versions were left alone, each named with the reason', VersionsOutcome) };
const newVersion = { '200': json('new version', PutResult), ...ERRORS };

/** PATCH, on both ports (the OIDC port where a role grants write and read). */
export const patchOp = { operationId: 'patchSecret', summary: 'merge keys into the latest version as a new version (needs write and read; null removes a key; cas as for PUT)', parameters: [pathParam], requestBody: body(PatchSecretInput), responses: newVersion };
/** :rollback, on both ports (the OIDC port where a role grants write and read). */
export const rollbackOp = { operationId: 'rollbackSecret', summary: "write version N's data as a new version (needs write and read)", parameters: [pathParam], requestBody: body(RollbackInput), responses: newVersion };

const secretOps = {
  get: { operationId: 'readSecret', summary: 'read the latest version or ?version=N (deleted or destroyed: 404)', parameters: [pathParam, versionParam], responses: { '200': json('the secret', SecretVersion), ...ERRORS } },
  put: {
    operationId: 'writeSecret',
    summary: 'write a new version (cas: the current latest version, 0 = create only; cas needs read too; without read: 200 {path} only)',
    parameters: [pathParam],
    requestBody: body(PutSecretInput),
    responses: { '200': json('new version', PutResult), '201': json('created', PutResult), ...ERRORS },
  },
  patch: patchOp,
  delete: { operationId: 'deleteSecret', summary: 'soft delete the latest version, ?version=N or ?versions=1,2', parameters: [pathParam, versionParam, versionsParam], responses: { ...versionsDone, ...ERRORS } },
};

/** The mTLS port's own routes (plugins add theirs). */
export function mtlsPaths(): Paths {
  return {
    '/v1/secrets': { get: { operationId: 'listSecrets', summary: 'list paths the caller may list', parameters: listParams, responses: { '200': json('a page', ListPage), ...ERRORS } } },
    '/v1/secrets/{path}': secretOps,
    '/v1/secrets/{path}:metadata': {
      get: { operationId: 'secretMetadata', summary: 'versions and flags, no values', parameters: [pathParam], responses: { '200': json('metadata', SecretMetadata), ...ERRORS } },
      delete: { operationId: 'purgeSecret', summary: 'purge: the path, every version and its bytes (permission delete)', parameters: [pathParam], responses: { '204': { description: 'purged' }, ...ERRORS } },
    },
    '/v1/secrets/{path}:rollback': { post: rollbackOp },
    '/v1/secrets/{path}:undelete': {
      post: { operationId: 'undeleteVersions', summary: 'undelete versions', parameters: [pathParam], requestBody: body(VersionsInput), responses: { ...versionsDone, ...ERRORS } },
    },
    '/v1/secrets/{path}:destroy': {
      post: { operationId: 'destroyVersions', summary: 'erase the ciphertext of versions', parameters: [pathParam], requestBody: body(VersionsInput), responses: { ...versionsDone, ...ERRORS } },
    },
    '/v1/policies': { get: { operationId: 'listPolicies', summary: 'list SPIFFE policies (admin)', responses: { '200': json('policies', PolicyList), ...ERRORS } } },
    '/v1/policies/{name}': adminCrud('policy', PolicyInput, Policy, '; not the built-in one'),
    '/v1/signals': {
      get: {
        operationId: 'listSignals',
        summary: 'recent access signals, oldest first (metrics or admin permission)',
        parameters: [{ name: 'since', in: 'query', required: false, description: 'an RFC 3339 time, or seconds before now (default 3600)', schema: { type: 'string' } }],
        responses: { '200': json('signals', SignalList), ...ERRORS },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus text (metrics or admin permission)',
        responses: { '200': { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } }, ...ERRORS },
      },
    },
    ...healthPaths(),
  };
}

export function mtlsDocument(extra: Paths) {
  return document('Nexus mTLS port', 'Humans and services with a SPIFFE X509-SVID (client certificate required at the TLS handshake).', { ...mtlsPaths(), ...extra }, {
    spiffe: { type: 'mutualTLS', description: 'an X509-SVID of the trust domain' },
  });
}
