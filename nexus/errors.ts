/**
 * Typed errors. Every failure that can reach a caller is one of these; the
 * HTTP layer maps `code` to a status in exactly one place (nexus/http/errors.ts).
 * Messages must never contain a secret value, a key or a raw token.
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'token_not_yet_valid'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'
  | 'sealed'
  | 'data_integrity'
  | 'config'
  | 'startup'
  | 'internal';

export class NexusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input broke a documented rule; `rule` names it (e.g. `path.segment`). */
export class BadRequestError extends NexusError {
  readonly rule: string;
  constructor(rule: string, message: string) {
    super('bad_request', message);
    this.rule = rule;
  }
}

export class UnauthorizedError extends NexusError {
  /** Why, for the audit record and log only; never sent to the caller. */
  readonly reason: string;
  constructor(reason: string, message = 'credentials were not accepted') {
    super('unauthorized', message);
    this.reason = reason;
  }
}

/**
 * A token refused only because its nbf or iat lies ahead of the server's
 * clock (past the leeway): the clocks disagree, and presenting it again after
 * `retryAfterS` will do. Its own code tells a client to wait rather than give
 * up; that says nothing the token's holder cannot read in the token itself.
 */
export class TokenNotYetValidError extends UnauthorizedError {
  override readonly code: ErrorCode = 'token_not_yet_valid';
  constructor(
    reason: string,
    readonly retryAfterS: number,
  ) {
    super(reason);
  }
}

export class ForbiddenError extends NexusError {
  /** Why, for the audit record only, when it says more than the message (never sent to the caller). */
  readonly reason: string | undefined;
  constructor(message = 'permission denied', reason?: string) {
    super('forbidden', message);
    this.reason = reason;
  }
}

export class NotFoundError extends NexusError {
  constructor(message = 'not found') {
    super('not_found', message);
  }
}

export class ConflictError extends NexusError {
  constructor(message: string) {
    super('conflict', message);
  }
}

export class TooLargeError extends NexusError {
  constructor(message: string) {
    super('too_large', message);
  }
}

export class RateLimitedError extends NexusError {
  readonly retryAfterS: number;
  constructor(retryAfterS: number, message = 'too many requests') {
    super('rate_limited', message);
    this.retryAfterS = retryAfterS;
  }
}

export class UnavailableError extends NexusError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

/** The root key is not in memory: only health and the seal routes answer (503). */
export class SealedError extends NexusError {
  constructor() {
    super('sealed', 'Nexus is sealed: unseal it (pilot operator unseal) or wait for an operator');
  }
}

/** Stored bytes failed authentication or could not be decoded. */
export class DataIntegrityError extends NexusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('data_integrity', message, options);
  }
}

/** A configuration value is invalid; `key` names the offending setting. */
export class ConfigError extends NexusError {
  readonly key: string;
  constructor(key: string, rule: string) {
    super('config', `invalid configuration ${key}: ${rule}`);
    this.key = key;
  }
}

/** Start-up cannot proceed safely (wrong root key, pending migrations, ...). */
export class StartupError extends NexusError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('startup', message, options);
  }
}
