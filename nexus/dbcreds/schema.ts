import { ObjectName, Timestamps } from '../policy/schema.js';
import { z } from '../schema.js';

// Shapes of database connections, credential roles and leases (issue 21).

export const DEFAULT_TTL_S = 900;
export const MAX_TTL_S = 3600;
/** A lease may never be asked for longer than this, whatever a role says. */
export const TTL_CEILING_S = 24 * 3600;

const RoleNames = z.array(z.union([ObjectName, z.literal('*')])).max(100).describe('a list of up to 100 role names ("*": any role)');

/** PUT /v1/db/connections/{name}. The password is write-only. */
export const DbConnectionInput = z
  .strictObject({
    name: z.unknown().optional().describe('ignored: the name is the one in the URL'),
    url: z.string().max(2048).describe('postgres://host:port/database (no credentials: give username and password)'),
    username: z.string().min(1).max(63).describe('the admin role Nexus connects as (1 to 63 characters)'),
    password: z.string().min(1).max(1024).describe('its password (write-only: never returned, logged or audited)'),
    allowed_roles: RoleNames.default([]),
  })
  .meta({ id: 'DbConnectionInput' });
export type DbConnectionInput = z.output<typeof DbConnectionInput>;

export const DbConnection = z
  .strictObject({
    name: ObjectName,
    url: z.string(),
    username: z.string(),
    allowed_roles: z.array(z.string()),
    ...Timestamps,
  })
  .meta({ id: 'DbConnection' });
export type DbConnection = z.output<typeof DbConnection>;

export const DbConnectionList = z.strictObject({ connections: z.array(DbConnection) }).meta({ id: 'DbConnectionList' });

const Statements = (what: string) => z.array(z.string().min(1).max(8192)).min(1).max(50).describe(`a list of 1 to 50 SQL statements ${what}`);

export const TtlS = z.int().min(1).max(TTL_CEILING_S).describe(`seconds, 1 to ${TTL_CEILING_S}`);

/** PUT /v1/db/roles/{name}. */
export const DbRoleInput = z
  .strictObject({
    name: z.unknown().optional().describe('ignored: the name is the one in the URL'),
    connection: ObjectName,
    creation_statements: Statements('with {{name}}, {{password}}, {{expiration}}'),
    revocation_statements: Statements('with {{name}} (default: end its sessions, REASSIGN OWNED, DROP OWNED, DROP ROLE)').optional(),
    default_ttl_s: TtlS.default(DEFAULT_TTL_S),
    max_ttl_s: TtlS.default(MAX_TTL_S),
    username_template: z.string().min(1).max(256).describe('a template of A-Z a-z 0-9 _ - and {{role}}, {{caller}}, {{run}}, {{random}}, {{unix_time}}').optional(),
  })
  .meta({ id: 'DbRoleInput' });
export type DbRoleInput = z.output<typeof DbRoleInput>;

export const DbRole = z
  .strictObject({
    name: ObjectName,
    connection: z.string(),
    creation_statements: z.array(z.string()),
    revocation_statements: z.array(z.string()).optional(),
    default_ttl_s: z.int(),
    max_ttl_s: z.int(),
    username_template: z.string(),
    ...Timestamps,
  })
  .meta({ id: 'DbRole' });
export type DbRole = z.output<typeof DbRole>;

export const DbRoleList = z.strictObject({ roles: z.array(DbRole) }).meta({ id: 'DbRoleList' });

/** GET /v1/db/creds/{role}: the one answer that carries the password. */
export const DbCreds = z
  .strictObject({
    username: z.string(),
    password: z.string(),
    lease_id: z.string(),
    lease_duration: z.int().describe('seconds'),
    renewable: z.boolean(),
  })
  .meta({ id: 'DbCreds' });
export type DbCreds = z.output<typeof DbCreds>;

export const LeaseId = z
  .string()
  .regex(/^db\/creds\/[A-Za-z0-9._-]{1,128}\/[A-Za-z0-9_-]{16,64}$/)
  .describe('a lease id, db/creds/ROLE/ID');

export const LeaseRenewInput = z
  .strictObject({ lease_id: LeaseId, increment: z.int().min(1).max(TTL_CEILING_S).describe(`seconds from now, 1 to ${TTL_CEILING_S}`).optional() })
  .meta({ id: 'LeaseRenewInput' });
export const LeaseRevokeInput = z.strictObject({ lease_id: LeaseId }).meta({ id: 'LeaseRevokeInput' });
export const LeaseRevokePrefixInput = z
  .strictObject({ prefix: z.string().regex(/^db\/creds\/([A-Za-z0-9._-]{1,128}\/?)?$/).describe('db/creds/ or db/creds/ROLE') })
  .meta({ id: 'LeaseRevokePrefixInput' });

export const LeaseRenewed = z
  .strictObject({ lease_id: z.string(), lease_duration: z.int().describe('seconds left'), renewable: z.boolean() })
  .meta({ id: 'LeaseRenewed' });

export const LeaseInfo = z
  .strictObject({
    lease_id: z.string(),
    role: z.string(),
    connection: z.string(),
    username: z.string(),
    caller: z.string(),
    state: z.enum(['pending', 'active', 'revoking', 'failed']),
    created_at: z.string(),
    expires_at: z.string(),
    max_expires_at: z.string(),
    attempts: z.int(),
    last_error: z.string().optional(),
  })
  .meta({ id: 'LeaseInfo' });
export type LeaseInfo = z.output<typeof LeaseInfo>;

export const LeaseList = z.strictObject({ leases: z.array(LeaseInfo) }).meta({ id: 'LeaseList' });
export const LeasesRevoked = z.strictObject({ revoked: z.int(), failed: z.int() }).meta({ id: 'LeasesRevoked' });
