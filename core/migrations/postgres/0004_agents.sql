-- Agents and where runs go: the pool and queue a run waits in (copied from
-- its deployment when created), and the agent it was pushed to.
ALTER TABLE flow_runs ADD COLUMN work_pool TEXT NOT NULL DEFAULT 'default';
ALTER TABLE flow_runs ADD COLUMN work_queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE flow_runs ADD COLUMN agent_id TEXT;
-- Runs waiting for an agent, per pool and queue, oldest first: the
-- dispatcher reads the first few of each queue without sorting them all.
CREATE INDEX flow_runs_waiting ON flow_runs (work_pool, work_queue, scheduled_at)
    WHERE state IN ('SCHEDULED', 'LATE', 'AWAITING_RETRY');
CREATE INDEX flow_runs_by_agent ON flow_runs (agent_id, state);

-- Tokens made by `baton agent token create`: only a hash of the secret.
CREATE TABLE agent_tokens (
    id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every agent that ever connected; `last_seq` is the last of its events
-- applied, so a resent event is applied once.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pool TEXT NOT NULL,
    queues TEXT NOT NULL,
    slots BIGINT NOT NULL,
    version TEXT NOT NULL,
    connected BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0
);

-- The concurrency limit a due run waits for (`enqueue` policy only), so the
-- dispatcher can skip deployments at their limit without reading specs.
ALTER TABLE deployments ADD COLUMN enqueue_limit BIGINT;
