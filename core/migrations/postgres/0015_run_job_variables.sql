-- A run's own job variables (JSON), over its deployment's and its pool's
-- defaults; NULL when the run set none.
ALTER TABLE flow_runs ADD COLUMN job_variables TEXT;
