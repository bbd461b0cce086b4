import fs from 'node:fs';
import type { Config } from '../config/index.js';
import type { AuditTrail } from '../audit/trail.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Metrics } from '../metrics.js';
import type { RootKey } from '../crypto/root-key.js';
import { initSodium } from '../crypto/sodium.js';
import { DataIntegrityError, StartupError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectStorage } from '../core.js';
import type { SealRecord } from './record.js';
import { readSeal, SealController, unwrapWithToken, type SealEvent } from './seal.js';

/** What a running core gives its seal: the key to wipe or refill, the data keys to wipe, where events go. */
export interface KeyHolder {
  rootKey: RootKey;
  keyring: Keyring;
  audit: AuditTrail;
  metrics: Metrics;
}

/**
 * The seal of one server process, read before anything listens: shamir
 * starts sealed; pkcs11 is opened by its token now (a refusal stops
 * start-up); file leaves the key to the core. `finish` (set by the server)
 * completes a sealed start; later unseals refill the running core's key.
 */
export class SealAtStart {
  readonly controller: SealController;
  private holder: KeyHolder | null = null;
  finish: ((root: RootKey) => Promise<void>) | null = null;
  /** Events before there is a trail: they need no root key, and are written once there is one. */
  private queued: SealEvent[] = [];

  private constructor(
    config: Config,
    readonly record: SealRecord | null,
    readonly rootKey: RootKey | null,
  ) {
    this.controller = new SealController(config.seal, record, (root) => this.unsealed(root), () => this.wipe(), config.seal === 'shamir');
    this.controller.onEvent((e) => {
      if (this.holder) this.note(this.holder, e);
      else this.queued.push(e);
    });
  }

  private note(h: KeyHolder, e: SealEvent): void {
    if (e.action === 'unseal.failed') h.metrics.unsealFailures.inc();
    void h.audit.record({
      port: 'mtls',
      action: `seal.${e.action}`,
      decision: e.action === 'unseal.failed' ? 'deny' : 'allow',
      reason: [`progress ${e.progress}/${e.threshold}`, e.reason].filter(Boolean).join('; '),
    });
  }

  get sealed(): boolean {
    return this.controller.sealed;
  }

  static async open(config: Config, log: Logger): Promise<SealAtStart> {
    // Unseal opens the sealed key with libsodium before the core (which also initialises it) exists.
    await initSodium();
    if (config.seal === 'file') {
      if (!config.rootKeyInline && !isLoopback(config.mtlsAddr.host)) {
        log.warn({ seal: 'file', file: config.rootKeyFile }, 'the root key is a file on this host (NEXUS_SEAL=file): whoever copies the data dir has every secret; use NEXUS_SEAL=shamir or pkcs11 outside development');
      }
      // A sealed database refuses a file start before a key file could be made or missed.
      if (config.databaseUrl || fs.existsSync(config.dbFile)) await SealAtStart.readRecord(config, true);
      return new SealAtStart(config, null, null);
    }
    // A sealed replica reads the seal and writes nothing (no migration, no file).
    if (!config.databaseUrl && !fs.existsSync(config.dbFile)) {
      throw new StartupError(`NEXUS_SEAL=${config.seal} but ${config.dbFile} does not exist: run nexus-operator init --shares N --threshold T first`);
    }
    const record = await SealAtStart.readRecord(config, false);
    const rootKey = record!.type === 'pkcs11' ? await unwrapWithToken(config, record!) : null;
    return new SealAtStart(config, record, rootKey);
  }

  /** `fileMode`: a database without a meta table yet (a first start) holds no seal. */
  private static async readRecord(config: Config, fileMode: boolean): Promise<SealRecord | null> {
    const storage = connectStorage(config);
    try {
      const meta = storage.meta;
      if (fileMode) {
        try {
          await meta.get('seal');
        } catch {
          return null;
        }
      }
      return await readSeal(config, meta);
    } finally {
      await storage.close();
    }
  }

  /** The running core, once there is one. */
  hold(holder: KeyHolder): void {
    this.holder = holder;
    holder.metrics.sealed = () => this.controller.sealed;
    for (const e of this.queued.splice(0)) this.note(holder, e);
  }

  private async unsealed(root: RootKey): Promise<void> {
    const h = this.holder;
    if (!h) {
      await this.finish!(root);
      return;
    }
    try {
      if (root.kcv !== h.rootKey.kcv) throw new DataIntegrityError('the shares rebuild another root key than the one this server runs on');
      root.bytes.copy(h.rootKey.bytes);
    } finally {
      root.bytes.fill(0);
    }
  }

  private wipe(): void {
    this.holder?.rootKey.bytes.fill(0);
    this.holder?.keyring.wipe();
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
