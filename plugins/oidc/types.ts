export { DEFAULT_TOKEN_TTL_S, MAX_TOKEN_TTL_S, ROLE_PERMISSIONS, type ClaimValue, type IssuerConfig, type RoleConfig } from './schema.js';
