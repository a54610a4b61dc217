-- Failed invocations kept for the studio's replay, per tenant and bounded
-- (the newest N within a byte budget and an age); any node lists them.
CREATE TABLE failures (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    bot TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    bytes INTEGER NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX failures_by_time ON failures (tenant, at_ms DESC, id DESC);
