-- PostgreSQL port of ../009_leases.sql. Short-lived database users minted per job (issue 21). A connection's admin
-- password lives sealed in config_secrets (owner 'db-connection/NAME'), never
-- here. A lease row holds only what revocation needs, never a password, and
-- is written before its user is created: a crash between the two leaves a row
-- the sweeper revokes, never an orphan user.
CREATE TABLE db_connections (
  name          TEXT PRIMARY KEY,
  url           TEXT NOT NULL, -- without credentials
  username      TEXT NOT NULL,
  allowed_roles TEXT NOT NULL, -- JSON array of role names ('*': any)
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

CREATE TABLE db_roles (
  name                  TEXT PRIMARY KEY,
  connection            TEXT NOT NULL,
  creation_statements   TEXT NOT NULL, -- JSON array
  revocation_statements TEXT,          -- JSON array; NULL: the default
  default_ttl_s         INTEGER NOT NULL,
  max_ttl_s             INTEGER NOT NULL,
  username_template     TEXT,          -- NULL: the default
  created_at            TEXT NOT NULL,
  updated_at            TEXT NOT NULL
);

CREATE TABLE leases (
  id              TEXT PRIMARY KEY,
  role            TEXT NOT NULL,
  connection      TEXT NOT NULL,
  username        TEXT NOT NULL,
  token_hash      BYTEA,             -- SHA-256 of the exchanged token it was minted with; NULL: an mTLS caller
  caller          TEXT NOT NULL,
  created_at      BIGINT NOT NULL, -- ms since epoch, like every time here
  expires_at      BIGINT  NOT NULL,
  max_expires_at  BIGINT  NOT NULL,
  state           TEXT NOT NULL,    -- 'pending' (user being created), 'active', 'revoking', 'failed' (gave up: alert)
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT  NOT NULL DEFAULT 0,
  last_error      TEXT,
  claim_owner     TEXT,             -- the replica revoking it now, until claim_until
  claim_until     BIGINT 
);

CREATE INDEX leases_due ON leases (state, expires_at);
CREATE INDEX leases_token ON leases (token_hash);
CREATE INDEX leases_role ON leases (role);
