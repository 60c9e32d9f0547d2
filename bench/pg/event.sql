-- One durable event as the hub stores it (`PgStore::add_event`).
\set s random(1, 2000000000)
INSERT INTO prediction_events (prediction, seq, kind, data) VALUES ('e' || :client_id, :s, 'log', '"warning: x"')
ON CONFLICT (prediction, seq) DO UPDATE SET kind = EXCLUDED.kind, data = EXCLUDED.data;
