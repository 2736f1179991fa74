-- A new run's first history row and its `run.scheduled` event come from
-- this trigger, in the INSERT itself, so creating a run is one statement.
CREATE TRIGGER flow_runs_created AFTER INSERT ON flow_runs
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
        json_object('state', NEW.state, 'scheduled_at', NEW.scheduled_at)
    );
END;
