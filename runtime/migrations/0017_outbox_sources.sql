-- Which token source a delivery needs (a Sinch channel's id, from the
-- delivery's `auth`) and when it was queued: a node claims the deliveries of
-- sources it lacks only once they have waited long enough for a node that
-- has them (claim_deliveries), so a Sinch message is not sent, and failed,
-- by a node without that channel while one with it is up.
ALTER TABLE outbox ADD COLUMN auth TEXT COLLATE "C" GENERATED ALWAYS AS (delivery->>'auth') STORED;
ALTER TABLE outbox ADD COLUMN queued_ms BIGINT NOT NULL
    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
