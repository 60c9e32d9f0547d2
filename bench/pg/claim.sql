-- One claim as `PgStore::claim` makes it, then the job's end (finish, fenced).
UPDATE predictions SET status = 'processing', worker_id = 'w' || :client_id, attempts = attempts + 1,
  started_at = now(), lease_until = now() + make_interval(secs => 15), cancel_requested = false
WHERE seq = (SELECT seq FROM predictions WHERE status = 'starting' AND run_after <= now()
             ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id;
