import type { Permission } from '../../nexus/auth/principal.js';

/** A trusted issuer, as configured (contract: OIDC issuers and roles). */
export interface IssuerConfig {
  name: string;
  issuer: string;
  audiences: string[];
  algorithms: string[];
  jwks_uri: string | null;
  max_token_age_s: number | null;
  created_at?: string;
  updated_at?: string;
}

export type ClaimValue = string | number | boolean;

/** Claims -> grants: every binding must hold; a list means any of its values. */
export interface RoleConfig {
  name: string;
  issuer: string;
  bound_claims: Record<string, ClaimValue | ClaimValue[]>;
  bound_claims_glob: Record<string, string>;
  paths: string[];
  permissions: Permission[];
  token_ttl_s: number | null;
  created_at?: string;
  updated_at?: string;
}

/** Permissions a role may grant on the OIDC port (never admin or metrics). */
export const ROLE_PERMISSIONS: readonly Permission[] = ['read', 'list', 'write'];

export const DEFAULT_TOKEN_TTL_S = 900;
export const MAX_TOKEN_TTL_S = 3600;
