-- Secrets every node of a deployment shares, made by the first node that
-- needs one (the web session key when no `webSessionSecret` is configured).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
