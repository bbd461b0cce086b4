export type { Policy } from './schema.js';

export const BUILTIN_ADMIN_POLICY = 'builtin-admin';
