-- Runs made by a schedule carry its id (NULL for runs made otherwise); the
-- scheduler finds a schedule's runs by time through this index.
ALTER TABLE flow_runs ADD COLUMN schedule_id TEXT;
CREATE INDEX flow_runs_by_schedule ON flow_runs (deployment_id, schedule_id, scheduled_at)
    WHERE schedule_id IS NOT NULL;
CREATE INDEX flow_runs_scheduled ON flow_runs (scheduled_at) WHERE schedule_id IS NOT NULL;
-- The next time a waiting run falls due: the dispatcher sleeps until then.
CREATE INDEX flow_runs_upcoming ON flow_runs (scheduled_at) WHERE state IN ('SCHEDULED', 'AWAITING_RETRY');

-- How far each active schedule is planned (runs exist for its times up to
-- `planned_until`), and when the scheduler must look at it again.
CREATE TABLE schedule_states (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    schedule_id TEXT NOT NULL,
    planned_until BIGINT NOT NULL,
    next_look BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, schedule_id)
);
CREATE INDEX schedule_states_by_next_look ON schedule_states (next_look);

-- When a scheduler last ticked (one row, shared by all cores of a
-- database): a longer silence was time when no core ran, whose schedule
-- times the catch-up policies decide.
CREATE TABLE scheduler_clock (
    id INTEGER PRIMARY KEY,
    last_tick BIGINT NOT NULL
);
