-- API tokens: each may do what its scope says (read, run, admin); only a
-- hash of its secret is kept. The core's own --api-token is an admin
-- token besides these.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT,
    scope TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
