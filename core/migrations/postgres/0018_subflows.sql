-- Subflows: a run started by another run's flow (`run_deployment`) records
-- its parent, whether the parent waits for it (cancelling the parent then
-- cancels it) and how deep it is in its chain of parents (a flow that
-- starts itself is cut at a limit).
ALTER TABLE flow_runs ADD COLUMN parent_id TEXT;
ALTER TABLE flow_runs ADD COLUMN parent_waits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN subflow_depth BIGINT NOT NULL DEFAULT 0;
CREATE INDEX flow_runs_by_parent ON flow_runs (parent_id, created_at) WHERE parent_id IS NOT NULL;
