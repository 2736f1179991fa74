-- Listing the newest runs in a state walks this index instead of sorting
-- every run in that state.
CREATE INDEX flow_runs_by_state_id ON flow_runs (state, id);
