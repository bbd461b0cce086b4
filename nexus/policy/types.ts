import type { Permission } from '../auth/principal.js';

/** A SPIFFE policy as stored and served. */
export interface Policy {
  name: string;
  spiffe_id: string;
  paths: string[];
  permissions: Permission[];
  created_at: string;
  updated_at: string;
  /** The built-in admin policy (NEXUS_ADMIN_SPIFFE_ID); cannot be changed through the API. */
  builtin?: true;
}

export const BUILTIN_ADMIN_POLICY = 'builtin-admin';
