-- Attempts: each dispatch of a run is an attempt with the next number, the
-- fencing token of that execution. Only events of the run's current attempt
-- change it; logs and task runs are kept per attempt, so a run executed
-- twice keeps both executions' lines apart.
ALTER TABLE flow_runs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
UPDATE flow_runs SET attempt = CASE WHEN run_count > 0 THEN run_count ELSE 1 END
    WHERE agent_id IS NOT NULL;

-- One row per attempt, kept by the trigger below in the same statement as
-- the state change; `stale_outcome` is what the execution said after it
-- had lost the run (kept for diagnosis, never applied).
CREATE TABLE run_attempts (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    dispatched_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    state TEXT NOT NULL,
    message TEXT,
    output TEXT,
    stale_outcome TEXT,
    PRIMARY KEY (run_id, number)
);

CREATE TRIGGER flow_runs_attempts AFTER UPDATE OF state_seq ON flow_runs
WHEN NEW.attempt > 0 AND OLD.state_seq IS NOT NEW.state_seq
    AND (NEW.attempt IS NOT OLD.attempt OR OLD.state IN ('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED'))
BEGIN
    INSERT INTO run_attempts (run_id, number, agent_id, dispatched_at, started_at, ended_at, state, message, output)
    VALUES (NEW.id, NEW.attempt, COALESCE(NEW.agent_id, ''), NEW.state_changed_at, NULL, NULL,
        NEW.state, NEW.state_message, CASE WHEN NEW.state = 'COMPLETED' THEN NEW.output END)
    ON CONFLICT (run_id, number) DO UPDATE SET
        state = excluded.state,
        message = excluded.message,
        output = excluded.output,
        started_at = CASE WHEN excluded.state = 'RUNNING'
            THEN COALESCE(run_attempts.started_at, excluded.dispatched_at) ELSE run_attempts.started_at END,
        ended_at = CASE WHEN excluded.state IN ('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')
            THEN NULL ELSE excluded.dispatched_at END;
END;

CREATE TABLE logs_by_attempt (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    task_id BIGINT,
    PRIMARY KEY (run_id, attempt, seq)
);
INSERT INTO logs_by_attempt (run_id, attempt, seq, at, level, message, task_id)
    SELECT run_id, 1, seq, at, level, message, task_id FROM logs;
DROP TABLE logs;
ALTER TABLE logs_by_attempt RENAME TO logs;
CREATE INDEX logs_by_time ON logs (at);

CREATE TABLE task_runs_by_attempt (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    run_attempt BIGINT NOT NULL,
    task_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    state TEXT NOT NULL,
    message TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    PRIMARY KEY (run_id, run_attempt, task_id)
);
INSERT INTO task_runs_by_attempt
    SELECT run_id, 1, task_id, name, attempt, max_attempts, state, message, started_at, ended_at FROM task_runs;
DROP TABLE task_runs;
ALTER TABLE task_runs_by_attempt RENAME TO task_runs;

-- Leases: which core holds an agent's session (`session` tells one
-- connection from the next) and until when. A core judges an agent's runs
-- lost only once no core has renewed its lease.
ALTER TABLE agents ADD COLUMN core_id TEXT;
ALTER TABLE agents ADD COLUMN session TEXT;
ALTER TABLE agents ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
