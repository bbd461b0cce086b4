-- Core storage: settings, wrapped data keys, secrets and their versions.

-- Small named values: the root key check value, key-rotation progress.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- Data-encryption keys, each wrapped (XChaCha20-Poly1305) by the root key.
-- root_kcv says which root key wraps the row, so a half-done rotation is visible.
CREATE TABLE data_keys (
  id         TEXT PRIMARY KEY,
  nonce      BLOB NOT NULL,
  wrapped    BLOB NOT NULL,
  root_kcv   TEXT NOT NULL,
  active     INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
  created_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE UNIQUE INDEX data_keys_one_active ON data_keys (active) WHERE active = 1;

-- One row per secret path. current_version counts every version ever written
-- (deleted, destroyed and pruned ones too): it is what check-and-set compares.
CREATE TABLE secrets (
  path            TEXT PRIMARY KEY,
  current_version INTEGER NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
) WITHOUT ROWID;

-- Values are ciphertext only. A destroyed version keeps its row (for metadata)
-- with key_id, nonce and ciphertext set to NULL.
CREATE TABLE secret_versions (
  path         TEXT NOT NULL REFERENCES secrets (path) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  key_id       TEXT REFERENCES data_keys (id),
  nonce        BLOB,
  ciphertext   BLOB,
  created_at   TEXT NOT NULL,
  deleted_at   TEXT,
  destroyed_at TEXT,
  PRIMARY KEY (path, version),
  CHECK ((destroyed_at IS NULL) = (ciphertext IS NOT NULL))
) WITHOUT ROWID;

CREATE INDEX secret_versions_by_key ON secret_versions (key_id) WHERE key_id IS NOT NULL;
