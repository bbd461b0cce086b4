import { ObjectName } from '../../nexus/policy/schema.js';
import { z } from '../../nexus/schema.js';
import { SecretData } from '../../nexus/secrets/schema.js';
import { MAX_TOKEN_TTL_S } from './types.js';
import { MAX_TOKEN_BYTES } from './verify.js';

/**
 * Vault's shapes, as far as the Vault-compatible CI routes serve them: the
 * request of the JWT login, the response envelope around each answer, and
 * the `{"errors":[...]}` error body.
 */

export const VaultLoginRequest = z
  .object({ role: ObjectName.describe('the Nexus role to restrict the exchange to'), jwt: z.string().max(MAX_TOKEN_BYTES).describe("the CI platform's JWT") })
  .meta({ id: 'VaultLoginRequest' });

/** Vault's envelope: what every answer carries besides its own `data` or `auth`. */
const envelope = {
  request_id: z.string(),
  lease_id: z.literal(''),
  renewable: z.literal(false),
  lease_duration: z.literal(0),
  wrap_info: z.null(),
  warnings: z.null(),
};

/** The envelope of an answer that carries a lease (database credentials, a renewal). */
const leased = {
  ...envelope,
  lease_id: z.string(),
  renewable: z.boolean(),
  lease_duration: z.int().describe('seconds'),
  auth: z.null(),
};

export const VaultLoginResponse = z
  .object({
    ...envelope,
    data: z.null(),
    auth: z.object({
      client_token: z.string().describe('an exchanged token (as from /v1/auth/token); X-Vault-Token on this port'),
      accessor: z.string().describe('names the token without being it (the audit trail token id)'),
      policies: z.array(ObjectName).describe('the role'),
      token_policies: z.array(ObjectName),
      metadata: z.object({ role: ObjectName, issuer: ObjectName, subject: z.string() }),
      lease_duration: z.int().min(1).max(MAX_TOKEN_TTL_S).describe('seconds'),
      renewable: z.literal(false),
      entity_id: z.literal(''),
      token_type: z.literal('service'),
      orphan: z.literal(true),
    }),
  })
  .meta({ id: 'VaultLoginResponse' });
export type VaultLoginResponse = z.output<typeof VaultLoginResponse>;

export const VaultSecretResponse = z
  .object({
    ...envelope,
    auth: z.null(),
    mount_type: z.literal('kv'),
    data: z.object({
      data: SecretData,
      metadata: z.object({ version: z.int().min(1), created_time: z.string().describe('RFC 3339'), custom_metadata: z.null(), deletion_time: z.literal(''), destroyed: z.literal(false) }),
    }),
  })
  .meta({ id: 'VaultSecretResponse' });
export type VaultSecretResponse = z.output<typeof VaultSecretResponse>;

export const VaultTokenLookup = z
  .object({
    ...envelope,
    auth: z.null(),
    data: z.object({
      accessor: z.string(),
      display_name: z.string(),
      entity_id: z.literal(''),
      expire_time: z.string().describe('RFC 3339'),
      explicit_max_ttl: z.literal(0),
      meta: z.object({ issuer: ObjectName, subject: z.string() }),
      num_uses: z.literal(0),
      orphan: z.literal(true),
      path: z.literal('auth/jwt/login'),
      policies: z.array(ObjectName),
      renewable: z.literal(false),
      ttl: z.int().min(0).describe('seconds left'),
      type: z.literal('service'),
    }),
  })
  .meta({ id: 'VaultTokenLookup' });
export type VaultTokenLookup = z.output<typeof VaultTokenLookup>;

export const VaultHealth = z
  .object({
    initialized: z.literal(true),
    sealed: z.boolean().describe('true when Nexus is not ready'),
    standby: z.literal(false),
    performance_standby: z.literal(false),
    replication_performance_mode: z.literal('disabled'),
    replication_dr_mode: z.literal('disabled'),
    server_time_utc: z.int(),
    version: z.string().describe('the Vault API level followed, tagged +nexus'),
    cluster_name: z.string(),
    cluster_id: z.string(),
  })
  .meta({ id: 'VaultHealth' });
export type VaultHealth = z.output<typeof VaultHealth>;

export const VaultErrors = z.object({ errors: z.array(z.string()) }).meta({ id: 'VaultErrors' });

/** The KV preflight (sys/internal/ui/mounts/secret/..., sys/mounts-all/secret/...): the one mount there is, KV v2. */
export const VaultMountResponse = z
  .object({
    ...envelope,
    auth: z.null(),
    data: z.object({
      type: z.literal('kv'),
      path: z.literal('secret/').describe('the mount; the CLI builds secret/data/... and secret/metadata/... from it'),
      options: z.object({ version: z.literal('2') }),
      description: z.string(),
      accessor: z.string(),
      local: z.literal(false),
      seal_wrap: z.literal(false),
      external_entropy_access: z.literal(false),
      config: z.object({ default_lease_ttl: z.literal(0), max_lease_ttl: z.literal(0), force_no_cache: z.literal(false) }),
    }),
  })
  .meta({ id: 'VaultMountResponse' });
export type VaultMountResponse = z.output<typeof VaultMountResponse>;

export const VaultKeyList = z
  .object({
    ...envelope,
    auth: z.null(),
    data: z.object({ keys: z.array(z.string()).describe('one level, sorted; a folder ends in /; only what the token may list') }),
  })
  .meta({ id: 'VaultKeyList' });
export type VaultKeyList = z.output<typeof VaultKeyList>;

const VaultVersionInfo = z.object({ created_time: z.string().describe('RFC 3339'), deletion_time: z.string().describe("RFC 3339, '' when not deleted"), destroyed: z.boolean() });

export const VaultKvMetadata = z
  .object({
    ...envelope,
    auth: z.null(),
    data: z.object({
      cas_required: z.literal(false),
      created_time: z.string().describe('RFC 3339: the first version kept'),
      updated_time: z.string().describe('RFC 3339: the newest version'),
      current_version: z.int().min(0),
      oldest_version: z.int().min(0),
      max_versions: z.literal(0),
      delete_version_after: z.literal('0s'),
      custom_metadata: z.null(),
      versions: z.record(z.string().regex(/^\d+$/), VaultVersionInfo).describe('by version number; no values'),
    }),
  })
  .meta({ id: 'VaultKvMetadata' });
export type VaultKvMetadata = z.output<typeof VaultKvMetadata>;

/** GET /v1/database/creds/{role}: Vault's database secrets engine answer, the lease in the envelope. */
export const VaultDbCredsResponse = z
  .object({ ...leased, data: z.object({ username: z.string(), password: z.string() }) })
  .meta({ id: 'VaultDbCredsResponse' });
export type VaultDbCredsResponse = z.output<typeof VaultDbCredsResponse>;

/** PUT /v1/sys/leases/renew: the lease's new duration. */
export const VaultLeaseRenewed = z
  .object({ ...leased, data: z.null() })
  .meta({ id: 'VaultLeaseRenewed' });
export type VaultLeaseRenewed = z.output<typeof VaultLeaseRenewed>;
