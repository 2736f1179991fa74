-- Each planned schedule's spec beside its progress, so a scheduler pass
-- reads only the schedules (a deployment is read when runs are made).
ALTER TABLE schedule_states ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';
