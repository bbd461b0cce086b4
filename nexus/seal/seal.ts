import type { Config } from '../config/index.js';
import { makeRootKey, type RootKey } from '../crypto/root-key.js';
import { BadRequestError, DataIntegrityError, StartupError } from '../errors.js';
import { META } from '../storage/meta-repo.js';
import type { MetaRepo } from '../storage/storage.js';
import { pkcs11Options } from './pin.js';
import { describeSeal, readSealRecord, type SealMode, type SealRecord } from './record.js';
import { parseShare } from './shamir.js';
import { openSplit, WrongQuorumError } from './split.js';
import { UnsealProgress } from './unseal-progress.js';

export interface SealStatus {
  sealed: boolean;
  type: SealMode;
  threshold: number;
  shares: number;
  progress: number;
  nonce: string;
}

/** What the trail and metrics hear of the seal: never a share. */
export interface SealEvent {
  action: 'seal' | 'unseal.progress' | 'unseal.failed' | 'unseal' | 'unseal.reset';
  progress: number;
  threshold: number;
  reason?: string;
}

/**
 * The seal as configured, checked against the database before anything
 * listens: a mode that disagrees with what the database holds names both.
 */
export async function readSeal(config: Config, meta: MetaRepo): Promise<SealRecord | null> {
  const record = await readSealRecord(meta);
  if (config.seal === 'file') {
    if (record) throw new StartupError(`NEXUS_SEAL=file but the database holds ${describeSeal(record)}: set NEXUS_SEAL=${record.type}, or run nexus-operator migrate-seal --to file`);
    return null;
  }
  if (!record) {
    const hasKey = (await meta.get(META.rootKcv)) !== null;
    throw new StartupError(
      hasKey
        ? `NEXUS_SEAL=${config.seal} but the database's root key is in file mode: run nexus-operator migrate-seal --to ${config.seal} (Nexus stopped)`
        : `NEXUS_SEAL=${config.seal} but the database has no seal yet: run nexus-operator init --shares N --threshold T first`,
    );
  }
  if (record.type !== config.seal) throw new StartupError(`NEXUS_SEAL=${config.seal} but the database holds ${describeSeal(record)}: set NEXUS_SEAL=${record.type}, or run nexus-operator migrate-seal --to ${config.seal}`);
  return record;
}

/** pkcs11: the root key, unwrapped by the token (loaded only in this mode). */
export async function unwrapWithToken(config: Config, record: SealRecord): Promise<RootKey> {
  const { withToken } = await import('./pkcs11.js');
  const p = record.pkcs11!;
  const bytes = await withToken(pkcs11Options(config), (t) => t.unwrap(t.key(false), Buffer.from(p.iv, 'base64'), Buffer.from(p.wrapped, 'base64')));
  return makeRootKey(bytes, 'pkcs11');
}

/**
 * The seal of a running server: sealed or not, and the Shamir attempt in
 * progress. `unsealed` finishes start-up (first unseal) or reinstalls the
 * key (after a seal); it may refuse, and then the seal stays closed.
 */
export class SealController {
  private sealedNow: boolean;
  private progress: UnsealProgress | null;
  private readonly listeners: Array<(e: SealEvent) => void> = [];

  constructor(
    readonly mode: SealMode,
    private readonly record: SealRecord | null,
    private readonly unsealed: (root: RootKey) => Promise<void>,
    private readonly sealing: () => void,
    startSealed: boolean,
  ) {
    this.sealedNow = startSealed;
    this.progress = record?.unseal ? new UnsealProgress(record.unseal.threshold, record.unseal.split_id) : null;
  }

  get sealed(): boolean {
    return this.sealedNow;
  }

  onEvent(fn: (e: SealEvent) => void): void {
    this.listeners.push(fn);
  }

  private emit(e: SealEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  status(): SealStatus {
    const split = this.record?.unseal;
    return {
      sealed: this.sealedNow,
      type: this.mode,
      threshold: split?.threshold ?? 0,
      shares: split?.shares ?? 0,
      progress: this.progress?.progress ?? 0,
      nonce: this.progress && this.sealedNow ? this.progress.nonce : '',
    };
  }

  reset(): SealStatus {
    if (this.progress && this.progress.progress > 0) {
      this.progress.reset();
      this.emit({ action: 'unseal.reset', progress: 0, threshold: this.progress.threshold });
    }
    return this.status();
  }

  /** One share (text as received); the string is the caller's, the bytes parsed here are wiped here. */
  async submit(raw: unknown, nonce: string | undefined): Promise<SealStatus> {
    if (!this.sealedNow) return this.status();
    const progress = this.progress;
    if (!progress) throw new BadRequestError('seal', `a ${this.mode} seal does not take unseal shares${this.mode === 'pkcs11' ? ': it is opened by the token at start-up; restart Nexus' : ''}`);
    const fail = (reason: string) => this.emit({ action: 'unseal.failed', progress: progress.progress, threshold: progress.threshold, reason });
    let quorum;
    try {
      quorum = progress.add(parseShare(raw), nonce);
    } catch (err) {
      fail((err as { rule?: string }).rule ?? (err as Error).name);
      throw err;
    }
    if (!quorum) {
      this.emit({ action: 'unseal.progress', progress: progress.progress, threshold: progress.threshold });
      return this.status();
    }
    let root: Buffer | null = null;
    try {
      root = await openSplit(this.record!.unseal!, quorum);
    } catch (err) {
      if (!(err instanceof WrongQuorumError)) throw err;
      fail('wrong_quorum');
      throw new BadRequestError('share.quorum', 'these shares do not open this seal (a wrong or mistyped share): unseal progress reset');
    } finally {
      progress.reset();
    }
    try {
      await this.unsealed(makeRootKey(root, 'shamir'));
    } catch (err) {
      root.fill(0);
      fail(err instanceof DataIntegrityError ? 'key_check' : 'start');
      throw err;
    }
    this.sealedNow = false;
    this.emit({ action: 'unseal', progress: 0, threshold: progress.threshold });
    return this.status();
  }

  /** Seals a running server: the key leaves memory; requests answer 503 until unsealed again. */
  seal(): SealStatus {
    if (this.sealedNow) return this.status();
    if (this.mode === 'file') throw new BadRequestError('seal', 'a file seal cannot be sealed: its key is on disk (use NEXUS_SEAL=shamir or pkcs11)');
    this.sealedNow = true;
    this.progress?.reset();
    this.sealing();
    this.emit({ action: 'seal', progress: 0, threshold: this.progress?.threshold ?? 0 });
    return this.status();
  }
}
