-- Deliveries given up after their retry period: kept, listed, re-queueable.
CREATE TABLE dead_letters (
    id           BIGINT PRIMARY KEY,
    bot          TEXT COLLATE "C" NOT NULL,
    conversation TEXT COLLATE "C" NOT NULL,
    delivery     JSONB NOT NULL,
    reason       TEXT NOT NULL,
    dead_ms      BIGINT NOT NULL
);
CREATE INDEX dead_letters_bot ON dead_letters (bot, id);
