-- The agent event (its sequence number on that agent's link) that made a
-- run's change, when an execution's event made it: an event sent again to
-- another core after a failover, before the first core recorded it as
-- applied, is then recognised as applied rather than taken for a stale
-- execution's word.
ALTER TABLE flow_runs ADD COLUMN agent_seq BIGINT;
ALTER TABLE run_states ADD COLUMN agent_seq BIGINT;

CREATE OR REPLACE FUNCTION flow_runs_history() RETURNS trigger AS $$
BEGIN
    INSERT INTO run_states (run_id, seq, state, message, at, attempt, agent_id, output, agent_seq)
    VALUES (NEW.id, NEW.state_seq, NEW.state, NEW.state_message, NEW.state_changed_at,
        NEW.attempt, NEW.agent_id, CASE WHEN NEW.state = 'COMPLETED' THEN NEW.output END,
        NEW.agent_seq);
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
