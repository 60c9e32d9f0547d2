-- One admission as `PgStore::insert_if_room` makes it (advisory lock, counts, insert) into a
-- queue of at most 1,000 (once full, the lock and the counts still run, as a full queue's 429).
\set n random(1, 1000000000)
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('consistentid.admission'));
INSERT INTO predictions (id, owner, model, version, status, input, created_at)
SELECT 'a' || :n || '-' || :client_id || '-' || txid_current(), 'o' || :client_id, 'm', 'v', 'starting', '{}', now()
WHERE (SELECT count(*) FROM predictions WHERE status = 'starting') < 1000
  AND (SELECT count(*) FROM predictions WHERE status = 'starting' AND owner = 'o' || :client_id) < 1000;
COMMIT;
