-- What flows leave for people to read (markdown, tables, links, progress),
-- once per (run, attempt, report seq) so a resent report is stored once.
CREATE TABLE run_artifacts (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    artifact_key TEXT,
    kind TEXT NOT NULL,
    description TEXT,
    content TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, attempt, seq)
);
CREATE INDEX run_artifacts_by_key ON run_artifacts (artifact_key, created_at);
