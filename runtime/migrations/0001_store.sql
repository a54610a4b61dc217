-- Sandbot's PostgreSQL store: what the embedded store keeps, in tables
-- several nodes share. Ids compare byte-wise (COLLATE "C"), like the
-- embedded store's keys, so listings page the same on both.

CREATE TABLE conversations (
    bot          TEXT COLLATE "C" NOT NULL,
    conversation TEXT COLLATE "C" NOT NULL,
    state        JSONB NOT NULL,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (bot, conversation)
);
CREATE INDEX conversations_updated ON conversations (updated_ms);

CREATE TABLE transcripts (
    bot          TEXT COLLATE "C" NOT NULL,
    conversation TEXT COLLATE "C" NOT NULL,
    seq          BIGINT NOT NULL,
    at_ms        BIGINT NOT NULL,
    event        JSONB NOT NULL,
    PRIMARY KEY (bot, conversation, seq)
);

CREATE TABLE postbacks (
    bot    TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    target JSONB NOT NULL,
    PRIMARY KEY (bot, id)
);

-- Accepted inbound messages waiting for their turn.
CREATE TABLE inbox (
    id           BIGSERIAL PRIMARY KEY,
    tenant       TEXT COLLATE "C" NOT NULL,
    bot          TEXT COLLATE "C" NOT NULL,
    conversation TEXT COLLATE "C" NOT NULL,
    accepted_ms  BIGINT NOT NULL,
    job          JSONB NOT NULL
);
CREATE INDEX inbox_conversation ON inbox (bot, conversation, id);
CREATE INDEX inbox_tenant ON inbox (tenant);

-- Inbound message ids already accepted (channel retries are duplicates).
CREATE TABLE seen (
    key   TEXT COLLATE "C" PRIMARY KEY,
    at_ms BIGINT NOT NULL
);

-- Which node runs a conversation's turns, until when; `epoch` fences a node
-- whose lease passed to another.
CREATE TABLE leases (
    bot          TEXT COLLATE "C" NOT NULL,
    conversation TEXT COLLATE "C" NOT NULL,
    node         TEXT NOT NULL,
    until_ms     BIGINT NOT NULL,
    epoch        BIGINT NOT NULL,
    PRIMARY KEY (bot, conversation)
);

-- Outbound deliveries, in id order per conversation; a node claims a
-- conversation's oldest one until `claimed_until`.
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    bot           TEXT COLLATE "C" NOT NULL,
    conversation  TEXT COLLATE "C" NOT NULL,
    delivery      JSONB NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before_ms BIGINT NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_conversation ON outbox (bot, conversation, id);
