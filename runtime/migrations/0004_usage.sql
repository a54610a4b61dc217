-- Each node's usage figures since it started, per tenant and bot;
-- `GET /v1/usage` adds up every node's rows.
CREATE TABLE usage (
    node    TEXT NOT NULL,
    tenant  TEXT COLLATE "C" NOT NULL,
    bot     TEXT COLLATE "C" NOT NULL,
    figures JSONB NOT NULL,
    PRIMARY KEY (node, tenant, bot)
);
CREATE INDEX usage_tenant ON usage (tenant);
