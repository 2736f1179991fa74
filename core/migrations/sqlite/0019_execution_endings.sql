-- When an execution's run leaves it other than COMPLETED (it failed,
-- crashed, was cancelled, handed back or lost), the run's log says why as
-- the last line of that attempt, whoever decided it (the agent, the sweep,
-- a cancel). Line number 4294967295 (u32::MAX) of an attempt is kept for
-- it, so it sorts last and is written once.
CREATE TRIGGER flow_runs_ending_log_line AFTER UPDATE OF state_seq ON flow_runs
WHEN OLD.state_seq IS NOT NEW.state_seq
    AND OLD.state IN ('PENDING', 'RUNNING', 'CANCELLING')
    AND NEW.state NOT IN ('PENDING', 'RUNNING', 'CANCELLING', 'COMPLETED')
    AND NEW.state_message IS NOT NULL
BEGIN
    INSERT INTO logs (run_id, attempt, seq, at, level, message, task_id)
    VALUES (
        NEW.id,
        OLD.attempt,
        4294967295,
        NEW.state_changed_at,
        CASE WHEN NEW.state IN ('FAILED', 'CRASHED', 'AWAITING_RETRY') THEN 'error' ELSE 'warn' END,
        NEW.state || ': ' || NEW.state_message,
        NULL
    )
    ON CONFLICT (run_id, attempt, seq) DO NOTHING;
END;

-- Its tasks still RUNNING then end with it (a cancelled or crashed flow
-- never reports them): with the run's state if it ended, else CRASHED.
CREATE TRIGGER flow_runs_ending_tasks AFTER UPDATE OF state_seq ON flow_runs
WHEN OLD.state_seq IS NOT NEW.state_seq
    AND OLD.state IN ('PENDING', 'RUNNING', 'CANCELLING')
    AND NEW.state NOT IN ('PENDING', 'RUNNING', 'CANCELLING')
BEGIN
    UPDATE task_runs SET
        state = CASE WHEN NEW.state IN ('COMPLETED', 'FAILED', 'CRASHED', 'CANCELLED')
            THEN NEW.state ELSE 'CRASHED' END,
        message = COALESCE(message, 'the run ended ' || NEW.state),
        ended_at = NEW.state_changed_at
    WHERE run_id = NEW.id AND run_attempt = OLD.attempt AND state = 'RUNNING';
END;
