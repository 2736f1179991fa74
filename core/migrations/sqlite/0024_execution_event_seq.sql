-- The agent event (its sequence number on that agent's link) that made a
-- run's change, when an execution's event made it: an event sent again to
-- another core after a failover, before the first core recorded it as
-- applied, is then recognised as applied rather than taken for a stale
-- execution's word.
ALTER TABLE flow_runs ADD COLUMN agent_seq BIGINT;
ALTER TABLE run_states ADD COLUMN agent_seq BIGINT;

DROP TRIGGER flow_runs_history;
CREATE TRIGGER flow_runs_history AFTER UPDATE OF state_seq ON flow_runs
WHEN OLD.state_seq IS NOT NEW.state_seq
BEGIN
    INSERT INTO run_states (run_id, seq, state, message, at, attempt, agent_id, output, agent_seq)
    VALUES (NEW.id, NEW.state_seq, NEW.state, NEW.state_message, NEW.state_changed_at,
        NEW.attempt, NEW.agent_id, CASE WHEN NEW.state = 'COMPLETED' THEN NEW.output END,
        NEW.agent_seq);
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
