-- The dashboard counts runs by state over a window of scheduled times;
-- this index answers it without reading the runs themselves.
CREATE INDEX flow_runs_by_time ON flow_runs (scheduled_at, state);
