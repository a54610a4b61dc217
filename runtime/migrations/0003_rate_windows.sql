-- Fixed-window request counts shared by the nodes (REST tokens, web chat
-- addresses and conversations), keyed by a hash.
CREATE TABLE rate_windows (
    key          TEXT COLLATE "C" PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
