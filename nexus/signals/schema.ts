import { z } from '../schema.js';
import { SIGNAL_NAMES } from './types.js';

/** One signal as GET /v1/signals serves it. */
export const SignalEntry = z
  .object({
    signal: z.enum(SIGNAL_NAMES),
    port: z.enum(['mtls', 'oidc', 'script', 'server']).describe('where it was seen; `server` for the audit trail itself'),
    principal: z.string().describe('SPIFFE ID; on the OIDC port "<issuer> <roles> <tenant claims>"; `unauthenticated` when none'),
    address: z.string().describe('the client address (empty when no request caused it)'),
    path: z.string().optional(),
    at: z.string().describe('when it was raised (RFC 3339)'),
    why: z.string(),
  })
  .meta({ id: 'Signal' });

export const SignalList = z.object({ signals: z.array(SignalEntry) }).meta({ id: 'SignalList' });
