-- The first schema: settings, versioned policies, the intake queue, cases with their
-- verdicts and effects, appeals, and the audit log of policy and settings changes.

CREATE TABLE server_settings (
    server_id   TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    settings    TEXT NOT NULL,          -- ServerSettings as JSON
    updated_at  TEXT NOT NULL
);

-- Every version of every policy; rows are never updated.
CREATE TABLE policies (
    server_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    text        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (server_id, name, version)
);

-- What is live: one row per (server, policy). The live version is always the newest.
CREATE TABLE policy_state (
    server_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    mode        TEXT,                   -- NULL: follow the server's mode
    PRIMARY KEY (server_id, name)
);

-- Intake. The unique key makes submit() idempotent; rows stay after completion so a
-- replayed gateway event is recognised and not decided twice.
CREATE TABLE queue (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    message     TEXT,                   -- Message as JSON; cleared once decided
    state       TEXT NOT NULL CHECK (state IN ('pending', 'acting', 'done')),
    case_id     TEXT,
    enqueued_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (platform, server_id, message_id)
);
CREATE INDEX queue_open ON queue (state) WHERE state != 'done';

CREATE TABLE cases (
    id             TEXT PRIMARY KEY,
    platform       TEXT NOT NULL,
    server_id      TEXT NOT NULL,
    channel_id     TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    author_id      TEXT NOT NULL,
    text           TEXT,                -- NULL once retention has purged it
    message        TEXT NOT NULL,       -- the Message as JSON, text removed
    status         TEXT NOT NULL,
    violation      INTEGER NOT NULL,
    skipped_reason TEXT,
    mode           TEXT NOT NULL,
    decided_by     TEXT,
    decided_at     TEXT,
    created_at     TEXT NOT NULL,
    text_purged_at TEXT,
    UNIQUE (platform, server_id, message_id)
);
CREATE INDEX cases_server_time ON cases (server_id, created_at);
CREATE INDEX cases_author ON cases (server_id, author_id, created_at);

CREATE TABLE verdicts (
    id                INTEGER PRIMARY KEY,
    case_id           TEXT NOT NULL REFERENCES cases (id),
    appeal_id         INTEGER,          -- set for an appeal's second opinion
    policy            TEXT NOT NULL,
    policy_version    INTEGER NOT NULL,
    status            TEXT NOT NULL,
    violation         INTEGER NOT NULL,
    policy_category   TEXT,
    rule_ids          TEXT NOT NULL,    -- JSON list
    confidence        TEXT NOT NULL,
    rationale         TEXT NOT NULL,
    reasoning         TEXT NOT NULL,
    raw_output        TEXT,
    model             TEXT NOT NULL,
    effort            TEXT NOT NULL,
    latency_ms        REAL NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reused            INTEGER NOT NULL,
    created_at        TEXT NOT NULL
);
CREATE INDEX verdicts_case ON verdicts (case_id);

-- Intent is written before execution (outcome 'started') and the result after, so an
-- effect interrupted by a crash is never executed a second time.
CREATE TABLE effects (
    case_id    TEXT NOT NULL REFERENCES cases (id),
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    effect     TEXT NOT NULL,           -- Effect as JSON
    outcome    TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE appeals (
    id          INTEGER PRIMARY KEY,
    case_id     TEXT NOT NULL UNIQUE REFERENCES cases (id),
    author_id   TEXT NOT NULL,
    statement   TEXT NOT NULL,
    status      TEXT NOT NULL,
    decided_by  TEXT,
    note        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    decided_at  TEXT
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    server_id TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    before    TEXT,
    after     TEXT,
    at        TEXT NOT NULL
);
CREATE INDEX audit_server_time ON audit_log (server_id, at);
