-- Automations: a trigger on the event feed and actions. `armed_at` starts a
-- proactive trigger's window (creation, resumption, last firing).
CREATE TABLE automations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    paused BIGINT NOT NULL DEFAULT 0,
    armed_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Each firing once, whichever core sees it first: keyed by the event that
-- fired it (or the window a proactive trigger fired for).
CREATE TABLE automation_firings (
    automation_id TEXT NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
    firing_key TEXT NOT NULL,
    fired_at BIGINT NOT NULL,
    PRIMARY KEY (automation_id, firing_key)
);

-- The automations whose actions led to a run (a JSON list of ids), so an
-- automation never reacts to what it caused itself.
ALTER TABLE flow_runs ADD COLUMN caused_by TEXT;
