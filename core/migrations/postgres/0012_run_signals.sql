-- Cores sharing the database hear of the runs that need them (channel
-- `baton_runs`): a run that falls due, or that frees a concurrency slot by
-- ending, wakes the dispatchers of the cores with an agent of its pool
-- ("due POOL"); a cancellation reaches the core holding the run's agent
-- ("cancel AGENT"). PostgreSQL sends identical notifications of one
-- transaction once, so a burst of runs is one wake-up per pool.
CREATE FUNCTION flow_runs_signal() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'CANCELLING' THEN
        PERFORM pg_notify('baton_runs', 'cancel ' || COALESCE(NEW.agent_id, ''));
    ELSE
        PERFORM pg_notify('baton_runs', 'due ' || NEW.work_pool);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER flow_runs_signal_created AFTER INSERT ON flow_runs
FOR EACH ROW WHEN (NEW.state = 'SCHEDULED')
EXECUTE FUNCTION flow_runs_signal();

CREATE TRIGGER flow_runs_signal_changed AFTER UPDATE OF state ON flow_runs
FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND (
    NEW.state IN ('SCHEDULED', 'CANCELLING')
    OR (OLD.state IN ('PENDING', 'RUNNING', 'CANCELLING')
        AND NEW.state NOT IN ('PENDING', 'RUNNING', 'CANCELLING'))))
EXECUTE FUNCTION flow_runs_signal();
