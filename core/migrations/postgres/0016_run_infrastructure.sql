-- Where a run's current attempt runs (JSON: type, and the process, container
-- or Job it runs in); set when it starts, cleared when it is dispatched again.
ALTER TABLE flow_runs ADD COLUMN infrastructure TEXT;
