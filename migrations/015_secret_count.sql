-- How many secrets (paths) there are, kept by triggers: `SELECT count(*)`
-- walks every row of the table, and on SQLite it runs on the event loop, so
-- each /metrics scrape of a store with a million secrets stalled every request.
CREATE TABLE secret_count (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  n  INTEGER NOT NULL
);
INSERT INTO secret_count (id, n) SELECT 1, count(*) FROM secrets;

CREATE TRIGGER secret_count_insert AFTER INSERT ON secrets
BEGIN
  UPDATE secret_count SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER secret_count_delete AFTER DELETE ON secrets
BEGIN
  UPDATE secret_count SET n = n - 1 WHERE id = 1;
END;
