import { ObjectName } from '../policy/schema.js';
import { DbConnection, DbConnectionInput, DbConnectionList, DbCreds, DbRole, DbRoleInput, DbRoleList, LeaseList, LeaseRenewed, LeaseRenewInput, LeaseRevokeInput, LeaseRevokePrefixInput, LeasesRevoked } from '../dbcreds/schema.js';
import { adminCrud, body, ERRORS, json, type Paths } from './openapi.js';

const roleParam = { name: 'role', in: 'path', required: true, schema: ObjectName };
const ttlParam = { name: 'ttl', in: 'query', required: false, description: "seconds (default: the role's default_ttl_s; above max_ttl_s: 400)", schema: { type: 'integer', minimum: 1 } };

/** GET db/creds and lease renew/revoke: the same operations on both ports. */
export function credsPaths(who: string): Paths {
  return {
    '/v1/db/creds/{role}': {
      get: {
        operationId: 'dbCreds',
        summary: `a new database user for a credential role (read on db/creds/{role}); its lease ends at its TTL; 429 once the caller holds NEXUS_DB_MAX_LEASES_PER_CALLER leases${who}`,
        parameters: [roleParam, ttlParam],
        responses: { '200': json('the user, its password (only here) and its lease', DbCreds), ...ERRORS },
      },
    },
    '/v1/leases/renew': {
      put: { operationId: 'renewLease', summary: `extend a lease (never past its role's max_ttl_s; needs read on db/creds/{role of the lease} now, as issuing does${who})`, requestBody: body(LeaseRenewInput), responses: { '200': json('renewed', LeaseRenewed), ...ERRORS } },
    },
    '/v1/leases/revoke': {
      put: { operationId: 'revokeLease', summary: `revoke a lease now: its user dropped, its sessions ended${who}`, requestBody: body(LeaseRevokeInput), responses: { '204': { description: 'revoked' }, ...ERRORS } },
    },
  };
}

/** The mTLS port's database credential routes. */
export function dbCredsPaths(): Paths {
  return {
    '/v1/db/connections': { get: { operationId: 'listDbConnections', summary: 'list database connections (admin; never a password)', responses: { '200': json('connections', DbConnectionList), ...ERRORS } } },
    '/v1/db/connections/{name}': adminCrud('db-connection', DbConnectionInput, DbConnection, '; refused while it has leases'),
    '/v1/db/roles': { get: { operationId: 'listDbRoles', summary: 'list database credential roles (admin)', responses: { '200': json('roles', DbRoleList), ...ERRORS } } },
    '/v1/db/roles/{name}': adminCrud('db-role', DbRoleInput, DbRole, '; its leases are revoked at their end'),
    ...credsPaths(' (the caller that minted it, or admin)'),
    '/v1/leases': {
      get: {
        operationId: 'listLeases',
        summary: 'list leases under a prefix (admin; ids and states, never passwords)',
        parameters: [{ name: 'prefix', in: 'query', required: false, description: 'db/creds/ (default) or db/creds/ROLE', schema: { type: 'string' } }],
        responses: { '200': json('leases', LeaseList), ...ERRORS },
      },
    },
    '/v1/leases/revoke-prefix': {
      put: { operationId: 'revokeLeasePrefix', summary: 'revoke every lease under a prefix (admin)', requestBody: body(LeaseRevokePrefixInput), responses: { '200': json('how many', LeasesRevoked), ...ERRORS } },
    },
  };
}
