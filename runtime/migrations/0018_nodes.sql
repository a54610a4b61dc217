-- The nodes that run on this database: each records itself, with the bots
-- it serves (store keys), every second, and removes its row when it stops.
-- `sandbot store inbox` reads it to say who serves what waits, and refuses
-- to drop the messages of a bot a running node serves.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    bots       TEXT[] NOT NULL,
    started_ms BIGINT NOT NULL,
    seen_ms    BIGINT NOT NULL
);
