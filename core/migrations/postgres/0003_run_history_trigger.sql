-- Every change of a run's state (a new state_seq) records its history row
-- and its event in the same statement, so a transition costs one UPDATE.
-- The event id is a UUIDv7 whose random part starts with the state's seq,
-- so a run's events sort in order even within one millisecond.
CREATE FUNCTION flow_runs_history() RETURNS trigger AS $$
BEGIN
    INSERT INTO run_states (run_id, seq, state, message, at)
    VALUES (NEW.id, NEW.state_seq, NEW.state, NEW.state_message, NEW.state_changed_at);
    INSERT INTO events (id, occurred, name, resource, related, payload)
    VALUES (
        lpad(to_hex((NEW.state_changed_at >> 16) & 4294967295), 8, '0') || '-' ||
            lpad(to_hex(NEW.state_changed_at & 65535), 4, '0') || '-7' ||
            lpad(to_hex(NEW.state_seq & 4095), 3, '0') || '-' ||
            to_hex(32768 + floor(random() * 16384)::int) || '-' ||
            lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'),
        NEW.state_changed_at,
        'run.' || lower(NEW.state),
        'run/' || NEW.id,
        json_build_array('deployment/' || NEW.flow_name || '/' || NEW.deployment_name)::text,
        json_build_object('from', OLD.state, 'to', NEW.state, 'message', NEW.state_message)::text
    );
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER flow_runs_history AFTER UPDATE OF state_seq ON flow_runs
FOR EACH ROW WHEN (OLD.state_seq IS DISTINCT FROM NEW.state_seq)
EXECUTE FUNCTION flow_runs_history();
