-- SPIFFE policies: a SPIFFE ID glob, path globs and permissions.
-- paths and permissions are JSON arrays; the built-in admin policy is not stored.
CREATE TABLE policies (
  name        TEXT PRIMARY KEY,
  spiffe_id   TEXT NOT NULL,
  paths       TEXT NOT NULL,
  permissions TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
) WITHOUT ROWID;
