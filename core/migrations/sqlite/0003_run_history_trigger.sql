-- Every change of a run's state (a new state_seq) records its history row
-- and its event in the same statement, so a transition costs one UPDATE.
-- The event id is a UUIDv7 whose random part starts with the state's seq,
-- so a run's events sort in order even within one millisecond.
CREATE TRIGGER flow_runs_history AFTER UPDATE OF state_seq ON flow_runs
WHEN OLD.state_seq IS NOT NEW.state_seq
BEGIN
    INSERT INTO run_states (run_id, seq, state, message, at)
    VALUES (NEW.id, NEW.state_seq, NEW.state, NEW.state_message, NEW.state_changed_at);
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
