-- Access signals (nexus/signals/): what each principal has learned, so a
-- restart or another replica does not start blind, and the signals raised,
-- for GET /v1/signals. Written in batches off the request path.
CREATE TABLE signal_baselines (
  principal  TEXT PRIMARY KEY, -- SPIFFE ID, or issuer, role and tenant claims
  first_seen INTEGER NOT NULL, -- ms since the epoch: its learning window starts here
  peak       INTEGER NOT NULL, -- the most distinct paths it read in one minute
  updated_at INTEGER NOT NULL  -- ms; the most recent are loaded at start
) WITHOUT ROWID;
CREATE INDEX signal_baselines_updated ON signal_baselines (updated_at);

CREATE TABLE signal_paths (
  principal TEXT NOT NULL,
  path      TEXT NOT NULL,
  PRIMARY KEY (principal, path)
) WITHOUT ROWID;

CREATE TABLE signal_events (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  at        TEXT NOT NULL,
  signal    TEXT NOT NULL,
  port      TEXT NOT NULL,
  principal TEXT NOT NULL,
  address   TEXT NOT NULL,
  path      TEXT,
  why       TEXT NOT NULL
);
CREATE INDEX signal_events_at ON signal_events (at);
