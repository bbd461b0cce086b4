import { z } from '../schema.js';

export const SealStatusSchema = z
  .object({
    sealed: z.boolean(),
    type: z.enum(['file', 'shamir', 'pkcs11']),
    threshold: z.number().int().describe('shares needed to unseal (0: this seal takes none)'),
    shares: z.number().int().describe('shares made at init'),
    progress: z.number().int().describe('shares given so far in the current attempt'),
    nonce: z.string().describe('the current attempt; empty when unsealed'),
  })
  .meta({ id: 'SealStatus' });

export const UnsealInput = z
  .union([
    z.strictObject({ key: z.string().max(200).describe('one unseal share, as printed by nexus-operator init'), nonce: z.string().max(64).optional().describe('the attempt this share belongs to (from seal-status)') }),
    z.strictObject({ reset: z.literal(true) }),
  ])
  .meta({ id: 'UnsealInput' });
