-- The moderation workflow: policy drafts awaiting apply, and the memory that keeps the
-- scheduled jobs from repeating themselves (reminders, digests, model health alerts).

-- A draft policy previewed against recent messages; it goes live only on apply, and
-- only if the live version is still the one it was previewed against.
CREATE TABLE policy_drafts (
    id              INTEGER PRIMARY KEY,
    server_id       TEXT NOT NULL,
    name            TEXT NOT NULL,
    text            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    base_version    INTEGER NOT NULL,   -- live version at preview time; 0: a new policy
    author          TEXT NOT NULL,
    summary         TEXT NOT NULL,      -- the preview's counts as JSON (no message text)
    created_at      TEXT NOT NULL,
    applied_by      TEXT,
    applied_at      TEXT,
    applied_version INTEGER
);
CREATE INDEX policy_drafts_server ON policy_drafts (server_id, name);

-- When the mod channel was last reminded of a waiting appeal.
CREATE TABLE appeal_reminders (
    appeal_id     INTEGER PRIMARY KEY REFERENCES appeals (id),
    reminders     INTEGER NOT NULL,
    last_sent_at  TEXT NOT NULL
);

-- One digest per server per UTC day, even when the job runs again after a restart.
CREATE TABLE digests_sent (
    server_id  TEXT NOT NULL,
    day        TEXT NOT NULL,           -- YYYY-MM-DD (UTC)
    outcome    TEXT NOT NULL,
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (server_id, day)
);

-- The model's health as the probe last saw it: a single row.
CREATE TABLE model_health (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    failing_since  TEXT,                -- NULL: no outage under way
    healthy_since  TEXT,                -- during an outage: answering again since
    last_problem   TEXT NOT NULL DEFAULT '',
    probed_at      TEXT NOT NULL
);

-- Servers told about the current outage: each gets one alert and one all-clear.
CREATE TABLE health_alerts (
    server_id   TEXT PRIMARY KEY,
    alerted_at  TEXT NOT NULL
);
