-- SQLite keeps a trigger-maintained count of secrets (its count(*) walked the
-- whole table on the event loop). PostgreSQL keeps count(*): it runs in the
-- database server, not in Nexus's event loop, and a single counter row would
-- make every replica's creation of a new path wait on one row lock.
SELECT 1;
