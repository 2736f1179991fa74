-- The latest progress a run's current attempt reported (`progress()`),
-- shown live in the API, the CLI and the run page.
ALTER TABLE flow_runs ADD COLUMN progress_fraction REAL;
ALTER TABLE flow_runs ADD COLUMN progress_message TEXT;
ALTER TABLE flow_runs ADD COLUMN progress_at BIGINT;
