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

CREATE FUNCTION flow_runs_attempts() RETURNS trigger AS $$
BEGIN
    INSERT INTO run_attempts (run_id, number, agent_id, dispatched_at, started_at, ended_at, state, message, output)
    VALUES (NEW.id, NEW.attempt, COALESCE(NEW.agent_id, ''), NEW.state_changed_at, NULL, NULL,
        NEW.state, NEW.state_message, CASE WHEN NEW.state = 'COMPLETED' THEN NEW.output END)
    ON CONFLICT (run_id, number) DO UPDATE SET
        state = EXCLUDED.state,
        message = EXCLUDED.message,
        output = EXCLUDED.output,
        started_at = CASE WHEN EXCLUDED.state = 'RUNNING'
            THEN COALESCE(run_attempts.started_at, EXCLUDED.dispatched_at) ELSE run_attempts.started_at END,
        ended_at = CASE WHEN EXCLUDED.state IN ('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')
            THEN NULL ELSE EXCLUDED.dispatched_at END;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER flow_runs_attempts AFTER UPDATE OF state_seq ON flow_runs
FOR EACH ROW WHEN (NEW.attempt > 0 AND OLD.state_seq IS DISTINCT FROM NEW.state_seq
    AND (NEW.attempt IS DISTINCT FROM OLD.attempt OR OLD.state IN ('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED')))
EXECUTE FUNCTION flow_runs_attempts();

ALTER TABLE logs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE logs DROP CONSTRAINT logs_pkey;
ALTER TABLE logs ADD PRIMARY KEY (run_id, attempt, seq);

ALTER TABLE task_runs ADD COLUMN run_attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE task_runs DROP CONSTRAINT task_runs_pkey;
ALTER TABLE task_runs ADD PRIMARY KEY (run_id, run_attempt, task_id);

-- Leases: which core holds an agent's session (`session` tells one
-- connection from the next) and until when. A core judges an agent's runs
-- lost only once no core has renewed its lease.
ALTER TABLE agents ADD COLUMN core_id TEXT;
ALTER TABLE agents ADD COLUMN session TEXT;
ALTER TABLE agents ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
