-- The outcomes of REST actions sent with an `Idempotency-Key`, by a digest
-- of the key (the `keep` of the action's inbox job): a client's retry is
-- answered with the first request's answer. Forgotten with the message ids
-- seen.
CREATE TABLE outcomes (
    key     TEXT COLLATE "C" PRIMARY KEY,
    outcome JSONB NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX outcomes_at ON outcomes (at_ms);
