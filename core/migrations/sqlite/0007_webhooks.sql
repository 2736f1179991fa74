-- Incoming webhooks: `POST /hooks/{slug}` turns a call into an event named
-- `event_name`; with a secret (sealed like secrets), the call must carry
-- its HMAC-SHA256 signature.
CREATE TABLE webhooks (
    slug TEXT PRIMARY KEY,
    event_name TEXT NOT NULL,
    sealed_secret BLOB,
    created_at BIGINT NOT NULL
);
