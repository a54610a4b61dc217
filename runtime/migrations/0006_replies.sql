-- A turn's outcome for a request (web chat, REST action) that waits on
-- another node than the one that ran the turn; taken once.
CREATE TABLE replies (
    key     TEXT COLLATE "C" PRIMARY KEY,
    outcome JSONB NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX replies_at ON replies (at_ms);
