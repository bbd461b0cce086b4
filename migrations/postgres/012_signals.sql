-- PostgreSQL port of ../012_signals.sql: one baseline for all replicas.
CREATE TABLE signal_baselines (
  principal  TEXT PRIMARY KEY,
  first_seen BIGINT NOT NULL,
  peak       INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX signal_baselines_updated ON signal_baselines (updated_at);

CREATE TABLE signal_paths (
  principal TEXT NOT NULL,
  path      TEXT NOT NULL,
  PRIMARY KEY (principal, path)
);

CREATE TABLE signal_events (
  id        BIGSERIAL PRIMARY KEY,
  at        TEXT NOT NULL,
  signal    TEXT NOT NULL,
  port      TEXT NOT NULL,
  principal TEXT NOT NULL,
  address   TEXT NOT NULL,
  path      TEXT,
  why       TEXT NOT NULL
);
CREATE INDEX signal_events_at ON signal_events (at);
