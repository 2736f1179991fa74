-- A run made by retrying another by hand (`POST /api/runs/{id}/retry`)
-- names the run it retries.
ALTER TABLE flow_runs ADD COLUMN retry_of TEXT;
