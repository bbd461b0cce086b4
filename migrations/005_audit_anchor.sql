-- The head of each audit chain, kept outside the trail files, so cutting,
-- emptying or replacing a file is detected. One row per chain: 'server'
-- (audit.jsonl and its rotated files) and 'scripts' (audit-scripts.jsonl).
CREATE TABLE audit_anchor (
  chain      TEXT PRIMARY KEY,
  generation INTEGER NOT NULL, -- a new generation begins at each recorded break
  count      INTEGER NOT NULL, -- records in this generation
  mac        TEXT NOT NULL,    -- the last record's MAC
  key_kcv    TEXT NOT NULL,    -- check value of the root key whose audit key made it
  updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- Audit MAC keys of earlier root keys, wrapped by the current root key, so
-- records written before a key rotation still verify.
CREATE TABLE audit_keys (
  kcv        TEXT PRIMARY KEY,
  nonce      BLOB NOT NULL,
  wrapped    BLOB NOT NULL,
  root_kcv   TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;

-- Issuers and roles seeded from a config file carry its path here; NULL means
-- created through the API (never touched by the file).
ALTER TABLE oidc_issuers ADD COLUMN managed_by TEXT;
ALTER TABLE oidc_roles ADD COLUMN managed_by TEXT;
