-- A new run's first history row and its `run.scheduled` event come from
-- this trigger, in the INSERT itself, so creating a run is one statement.
CREATE FUNCTION flow_runs_created() RETURNS trigger AS $$
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
        json_build_object('state', NEW.state, 'scheduled_at', NEW.scheduled_at)::text
    );
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER flow_runs_created AFTER INSERT ON flow_runs
FOR EACH ROW EXECUTE FUNCTION flow_runs_created();
