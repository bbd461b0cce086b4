-- OIDC plugin (PostgreSQL port of ../003_oidc.sql): issuers, roles, exchanged tokens.
CREATE TABLE oidc_issuers (
  name            TEXT PRIMARY KEY,
  issuer          TEXT NOT NULL,
  audiences       TEXT NOT NULL, -- JSON array
  algorithms      TEXT NOT NULL, -- JSON array
  jwks_uri        TEXT,
  max_token_age_s INTEGER,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);

CREATE TABLE oidc_roles (
  name              TEXT PRIMARY KEY,
  issuer            TEXT NOT NULL REFERENCES oidc_issuers (name),
  bound_claims      TEXT NOT NULL, -- JSON object
  bound_claims_glob TEXT NOT NULL, -- JSON object
  paths             TEXT NOT NULL, -- JSON array of path templates
  permissions       TEXT NOT NULL, -- JSON array
  token_ttl_s       INTEGER,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);

CREATE TABLE oidc_tokens (
  hash       BYTEA PRIMARY KEY,
  issuer     TEXT NOT NULL,
  issuer_url TEXT NOT NULL,
  subject    TEXT NOT NULL,
  roles      TEXT NOT NULL, -- JSON array of role names
  grants     TEXT NOT NULL, -- JSON array of {path, permissions}
  expires_at BIGINT NOT NULL, -- ms since epoch
  created_at TEXT NOT NULL
);

CREATE INDEX oidc_tokens_expiry ON oidc_tokens (expires_at);
