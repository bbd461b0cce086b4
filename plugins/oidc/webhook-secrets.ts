import type { Keyring, SealedValue } from '../../nexus/crypto/keyring.js';
import type { Repos } from '../../nexus/storage/storage.js';

/** What an issuer's webhook secret needs of the keyring: seal before a transaction, open at use. */
export type ConfigSealer = Pick<Keyring, 'sealConfig' | 'openConfig'>;

/** The config_secrets owner of an issuer's webhook secret (the seal is bound to it). */
export const webhookOwner = (issuer: string): string => `oidc-issuer-webhook/${issuer}`;

/** A webhook secret change, sealed and ready for the transaction: a value, a removal, or nothing to do. */
export type SealedWebhookSecret = SealedValue | null | undefined;

/**
 * Issuers' webhook secrets, sealed in config_secrets under their issuer's
 * owner name. Read from the shared database at every event (a secret set or
 * removed on another replica bites at once); the plaintext exists only while
 * an event is checked.
 */
export class WebhookSecrets {
  constructor(
    private readonly repos: Pick<Repos, 'configSecrets'>,
    private readonly sealer: ConfigSealer,
  ) {}

  /** Outside any transaction: sealing may need to read the active data key. */
  async seal(issuer: string, secret: string | null | undefined): Promise<SealedWebhookSecret> {
    if (secret === undefined || secret === null) return secret;
    const plain = Buffer.from(secret, 'utf8');
    try {
      return await this.sealer.sealConfig(webhookOwner(issuer), plain);
    } finally {
      plain.fill(0);
    }
  }

  /** The issuer's secret (the caller wipes it), or null when the issuer has not opted in. */
  async open(issuer: string): Promise<Buffer | null> {
    const row = await this.repos.configSecrets.get(webhookOwner(issuer));
    if (!row) return null;
    return this.sealer.openConfig(webhookOwner(issuer), { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext });
  }
}
