-- Write-only values inside configuration (a database connection's admin
-- password, an issuer's webhook secret): sealed under a data key like a
-- secret value, bound to their owner, never returned by any read. One table
-- for all of them, so that the data-key lifecycle (deleteUnused) has one
-- place to look before dropping a key.
CREATE TABLE config_secrets (
  owner      TEXT PRIMARY KEY, -- 'kind/name', e.g. 'db-connection/main'
  key_id     TEXT NOT NULL REFERENCES data_keys (id),
  nonce      BLOB NOT NULL,
  ciphertext BLOB NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
