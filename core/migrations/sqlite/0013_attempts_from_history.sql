-- A run's attempts are read from its history: each history row records
-- the attempt (and agent) the run was in after the change, and a change to
-- COMPLETED its output. This replaces `run_attempts` and the trigger that
-- kept it, a second write on every state change that cost about 5% of the
-- burst throughput; only what a stale execution said is kept apart.
ALTER TABLE run_states ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE run_states ADD COLUMN agent_id TEXT;
ALTER TABLE run_states ADD COLUMN output TEXT;

-- Each history row belongs to the last attempt dispatched by then.
UPDATE run_states SET (attempt, agent_id) = (
    SELECT a.number, a.agent_id FROM run_attempts a
    WHERE a.run_id = run_states.run_id AND a.dispatched_at <= run_states.at
    ORDER BY a.number DESC LIMIT 1)
WHERE EXISTS (
    SELECT 1 FROM run_attempts a WHERE a.run_id = run_states.run_id AND a.dispatched_at <= run_states.at);
UPDATE run_states SET output = (
    SELECT a.output FROM run_attempts a WHERE a.run_id = run_states.run_id AND a.number = run_states.attempt)
WHERE state = 'COMPLETED';

CREATE TABLE stale_outcomes (
    run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    said TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt)
);
INSERT INTO stale_outcomes (run_id, attempt, said)
    SELECT run_id, number, stale_outcome FROM run_attempts WHERE stale_outcome IS NOT NULL;
DROP TRIGGER flow_runs_attempts;
DROP TABLE run_attempts;

DROP TRIGGER flow_runs_history;
CREATE TRIGGER flow_runs_history AFTER UPDATE OF state_seq ON flow_runs
WHEN OLD.state_seq IS NOT NEW.state_seq
BEGIN
    INSERT INTO run_states (run_id, seq, state, message, at, attempt, agent_id, output)
    VALUES (NEW.id, NEW.state_seq, NEW.state, NEW.state_message, NEW.state_changed_at,
        NEW.attempt, NEW.agent_id, CASE WHEN NEW.state = 'COMPLETED' THEN NEW.output END);
    INSERT INTO events (id, occurred, name, resource, related, payload)
    VALUES (
        printf('%08llx-%04llx-7%03llx-%04llx-%012llx',
            (NEW.state_changed_at >> 16) & 4294967295,
            NEW.state_changed_at & 65535,
            NEW.state_seq & 4095,
            32768 + (abs(random()) % 16384),
            abs(random()) % 281474976710656),
        NEW.state_changed_at,
        'run.' || lower(NEW.state),
        'run/' || NEW.id,
        json_array('deployment/' || NEW.flow_name || '/' || NEW.deployment_name),
        json_object('from', OLD.state, 'to', NEW.state, 'message', NEW.state_message)
    );
END;
