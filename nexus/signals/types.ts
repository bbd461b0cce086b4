/** What Nexus says, at the source, is unusual about the access it serves. Output only: a signal never decides a request. */
export const SIGNAL_NAMES = ['new_path', 'denied_burst', 'read_spike', 'token_replay', 'config_change', 'audit_integrity'] as const;
export type SignalName = (typeof SIGNAL_NAMES)[number];

/** The port a signal came from; `server` for what belongs to no request (the trail itself). */
export type SignalPort = 'mtls' | 'oidc' | 'script' | 'server';

/** One signal, as listed by GET /v1/signals and kept in signal_events. Never a value or a token. */
export interface Signal {
  signal: SignalName;
  port: SignalPort;
  /** The principal key (SPIFFE ID; issuer, role and tenant on the OIDC port); `unauthenticated` when none. */
  principal: string;
  address: string;
  path?: string;
  /** ISO 8601. */
  at: string;
  why: string;
}

/**
 * One decided request, as the audit layer sees it once its status is known.
 * Plain fields the caller already holds: nothing is allocated to build it
 * that the audit record does not build anyway.
 */
export interface Observation {
  port: 'mtls' | 'oidc';
  /** The principal key; undefined when the request never authenticated. */
  principal: string | undefined;
  address: string;
  action: string;
  path: string | undefined;
  status: number;
  /** The HMAC id of the JWT (jti, else the token) or exchanged token: never the token. */
  tokenId?: string;
}

/** A configuration object that was changed (policy, issuer, role, database connection ...). */
export interface ConfigChange {
  port: SignalPort;
  principal: string | undefined;
  address: string;
  /** `policy`, `oidc.role`, `db.connection`, ... */
  kind: string;
  verb: string;
  name: string;
}

export const NO_PRINCIPAL = 'unauthenticated';
