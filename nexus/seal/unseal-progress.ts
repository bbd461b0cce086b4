import { randomBytes } from 'node:crypto';
import { BadRequestError, ConflictError } from '../errors.js';
import { shareIndex, type Share } from './shamir.js';

/**
 * One unseal attempt: shares held until the threshold, bound to a nonce so
 * that two operators cannot mix attempts. Every held share is wiped when the
 * attempt ends (quorum, reset or refusal).
 */
export class UnsealProgress {
  private held = new Map<number, Share>();
  private currentNonce = randomBytes(16).toString('hex');

  constructor(
    readonly threshold: number,
    readonly splitId: string,
  ) {}

  get progress(): number {
    return this.held.size;
  }

  get nonce(): string {
    return this.currentNonce;
  }

  /**
   * Adds a share; returns the quorum once the threshold is reached (the
   * caller wipes it through `reset`). A share of another split resets.
   */
  add(share: Share, nonce: string | undefined): Share[] | null {
    if (this.held.size > 0 && nonce !== undefined && nonce !== this.currentNonce) {
      share.bytes.fill(0);
      throw new ConflictError('this share belongs to another unseal attempt (nonce differs): check seal-status, or reset');
    }
    if (share.splitId !== this.splitId) {
      share.bytes.fill(0);
      this.reset();
      throw new BadRequestError('share.split', 'this share is from another split (another init): unseal progress reset');
    }
    const x = shareIndex(share);
    if (this.held.has(x)) {
      // The same share twice counts once.
      share.bytes.fill(0);
      return null;
    }
    this.held.set(x, share);
    return this.held.size >= this.threshold ? [...this.held.values()] : null;
  }

  reset(): void {
    for (const s of this.held.values()) s.bytes.fill(0);
    this.held = new Map();
    this.currentNonce = randomBytes(16).toString('hex');
  }
}
