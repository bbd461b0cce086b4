-- SPIFFE policies (PostgreSQL port of ../002_policies.sql).
CREATE TABLE policies (
  name        TEXT PRIMARY KEY,
  spiffe_id   TEXT NOT NULL,
  paths       TEXT NOT NULL,
  permissions TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
