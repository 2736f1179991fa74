-- Baton's store. Times are milliseconds since the Unix epoch (BIGINT),
-- booleans are 0/1 (BIGINT), JSON is TEXT, ids are UUIDv7 text (ordered by
-- creation time), so that one set of queries serves SQLite and PostgreSQL.

CREATE TABLE artifacts (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    flow_name TEXT NOT NULL,
    flow_version TEXT NOT NULL,
    description TEXT NOT NULL,
    parameter_schema TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE work_pools (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE work_queues (
    pool TEXT NOT NULL REFERENCES work_pools(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    priority BIGINT NOT NULL,
    concurrency_limit BIGINT,
    paused BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, name)
);

CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    flow_name TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    artifact_digest TEXT NOT NULL REFERENCES artifacts(digest),
    parameter_schema TEXT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (flow_name, name)
);

CREATE TABLE deployment_tags (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (deployment_id, tag)
);
CREATE INDEX deployment_tags_by_tag ON deployment_tags (tag);

CREATE TABLE flow_runs (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    flow_name TEXT NOT NULL,
    deployment_name TEXT NOT NULL,
    parameters TEXT NOT NULL,
    tags TEXT NOT NULL,
    state TEXT NOT NULL,
    state_message TEXT,
    state_changed_at BIGINT NOT NULL,
    state_seq BIGINT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    run_count BIGINT NOT NULL DEFAULT 0,
    max_retries BIGINT NOT NULL,
    retry_delay_ms BIGINT NOT NULL,
    timeout_ms BIGINT,
    idempotency_key TEXT,
    output TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX flow_runs_idempotency ON flow_runs (deployment_id, idempotency_key);
CREATE INDEX flow_runs_by_deployment ON flow_runs (deployment_id, id);
CREATE INDEX flow_runs_by_deployment_state ON flow_runs (deployment_id, state);
CREATE INDEX flow_runs_by_state ON flow_runs (state, scheduled_at);
CREATE INDEX flow_runs_by_end ON flow_runs (ended_at);

CREATE TABLE flow_run_tags (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX flow_run_tags_by_tag ON flow_run_tags (tag, run_id);

CREATE TABLE run_states (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE task_runs (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    task_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (run_id, task_id)
);

CREATE TABLE logs (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    task_id BIGINT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX logs_by_time ON logs (at);

CREATE TABLE variables (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    occurred BIGINT NOT NULL,
    name TEXT NOT NULL,
    resource TEXT NOT NULL,
    related TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (occurred);
CREATE INDEX events_by_name ON events (name, occurred);
