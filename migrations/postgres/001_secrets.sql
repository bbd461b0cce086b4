-- Core storage (PostgreSQL port of ../001_secrets.sql): settings, wrapped data
-- keys, secrets and their versions. Times are ISO-8601 text, as on SQLite.
-- Paths use COLLATE "C" so list order and cursors are byte order on both engines.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE data_keys (
  id         TEXT PRIMARY KEY,
  nonce      BYTEA NOT NULL,
  wrapped    BYTEA NOT NULL,
  root_kcv   TEXT NOT NULL,
  active     SMALLINT NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
  created_at TEXT NOT NULL
);

CREATE UNIQUE INDEX data_keys_one_active ON data_keys (active) WHERE active = 1;

CREATE TABLE secrets (
  path            TEXT COLLATE "C" PRIMARY KEY,
  current_version INTEGER NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);

CREATE TABLE secret_versions (
  path         TEXT COLLATE "C" NOT NULL REFERENCES secrets (path) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  key_id       TEXT REFERENCES data_keys (id),
  nonce        BYTEA,
  ciphertext   BYTEA,
  created_at   TEXT NOT NULL,
  deleted_at   TEXT,
  destroyed_at TEXT,
  PRIMARY KEY (path, version),
  CHECK ((destroyed_at IS NULL) = (ciphertext IS NOT NULL))
);

CREATE INDEX secret_versions_by_key ON secret_versions (key_id) WHERE key_id IS NOT NULL;
