-- PostgreSQL port of ../005_audit_anchor.sql. With several replicas, each
-- replica's chains are anchored under their own names (chain@replica).
CREATE TABLE audit_anchor (
  chain      TEXT PRIMARY KEY,
  generation INTEGER NOT NULL,
  count      INTEGER NOT NULL,
  mac        TEXT NOT NULL,
  key_kcv    TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE audit_keys (
  kcv        TEXT PRIMARY KEY,
  nonce      BYTEA NOT NULL,
  wrapped    BYTEA NOT NULL,
  root_kcv   TEXT NOT NULL,
  created_at TEXT NOT NULL
);

ALTER TABLE oidc_issuers ADD COLUMN managed_by TEXT;
ALTER TABLE oidc_roles ADD COLUMN managed_by TEXT;
