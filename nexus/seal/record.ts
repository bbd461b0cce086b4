import { DataIntegrityError } from '../errors.js';
import { z } from '../schema.js';
import type { MetaRepo } from '../storage/storage.js';

export const SEAL_MODES = ['file', 'shamir', 'pkcs11'] as const;
export type SealMode = (typeof SEAL_MODES)[number];

const Split = z.object({
  shares: z.number().int().min(1).max(255),
  threshold: z.number().int().min(1).max(255),
  split_id: z.string().regex(/^[0-9a-f]{16}$/),
  /** The root key sealed under the key the shares rebuild (base64 nonce and ciphertext). */
  nonce: z.string(),
  wrapped: z.string(),
});
export type SplitRecord = z.output<typeof Split>;

/**
 * What the database holds of a seal: never the root key, only the root key
 * wrapped (under the shares' key, or under the token's key), plus how to
 * open it. The key check value stays in meta.root_kcv as in file mode.
 */
export const SealRecord = z.object({
  type: z.enum(['shamir', 'pkcs11']),
  created_at: z.string(),
  /** shamir: the unseal split. */
  unseal: Split.optional(),
  /** pkcs11: the root key wrapped by the token's AES key (AES-GCM: iv, then ciphertext and tag). */
  pkcs11: z.object({ key_label: z.string(), iv: z.string(), wrapped: z.string() }).optional(),
  /** pkcs11: recovery shares, for `nexus-operator recover` only. */
  recovery: Split.optional(),
});
export type SealRecord = z.output<typeof SealRecord>;

export const SEAL_META = {
  record: 'seal',
  /** A migrate-seal in progress: the record it will install. */
  pending: 'seal_pending',
} as const;

export async function readSealRecord(meta: MetaRepo, key: string = SEAL_META.record): Promise<SealRecord | null> {
  const raw = await meta.get(key);
  if (raw === null) return null;
  const r = SealRecord.safeParse(JSON.parse(raw));
  if (!r.success) throw new DataIntegrityError(`the seal record (meta.${key}) is not readable`);
  return r.data;
}

export function writeSealRecord(meta: MetaRepo, rec: SealRecord, key: string = SEAL_META.record): Promise<void> {
  return meta.set(key, JSON.stringify(rec));
}

/** For messages: which seal this is, without anything secret. */
export function describeSeal(rec: SealRecord): string {
  if (rec.type === 'shamir') return `a shamir seal (${rec.unseal!.threshold} of ${rec.unseal!.shares}, split ${rec.unseal!.split_id}, created ${rec.created_at})`;
  return `a pkcs11 seal (token key ${rec.pkcs11!.key_label}, created ${rec.created_at})`;
}
