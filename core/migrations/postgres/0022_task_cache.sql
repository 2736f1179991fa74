-- The task cache across runs: a result stored under a cache key (its
-- sha256) by a run of a deployment, used by later runs of it until it
-- expires; a deployment's entries go with it.
CREATE TABLE task_cache (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    key_digest TEXT NOT NULL,
    output TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    run_id TEXT NOT NULL,
    stored_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (deployment_id, key_digest)
);
CREATE INDEX task_cache_by_age ON task_cache (deployment_id, stored_at);

-- A task answered from the cache (it did not run): the run whose result
-- it reused.
ALTER TABLE task_runs ADD COLUMN cached_from TEXT;
