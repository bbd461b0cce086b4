-- PostgreSQL port of ../008_config_secrets.sql: write-only values inside
-- configuration, sealed under a data key, bound to their owner.
CREATE TABLE config_secrets (
  owner      TEXT PRIMARY KEY,
  key_id     TEXT NOT NULL REFERENCES data_keys (id),
  nonce      BYTEA NOT NULL,
  ciphertext BYTEA NOT NULL,
  updated_at TEXT NOT NULL
);
