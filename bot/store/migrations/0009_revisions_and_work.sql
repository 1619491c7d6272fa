-- Messages have revisions: an edit that changes the text is a new revision of the same
-- message, queued and judged as its own case (bot/store/intake.py says what counts as one).
-- Interactive work (an appeal's second opinion, a policy preview) is queued too, ahead of
-- the bulk of messages. Notes tell moderators that a case's message was edited or deleted.

-- python: cases_unique_per_revision

-- The queue holds one row per revision. Rows stay after completion, so a replayed event is
-- recognised by its text digest and not decided twice. A revision is held (not_before) when
-- its author edits faster than the per-author limit; a newer one supersedes it.
CREATE TABLE queue_0007 (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    revision    INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1),
    text_digest TEXT,                   -- 128 bits of SHA-256 of the text; NULL: unknown (older rows)
    revised_at  TEXT NOT NULL,          -- the platform's time of this revision: the edit's, else the message's
    state       TEXT NOT NULL CHECK (state IN ('pending', 'acting', 'done', 'superseded', 'cancelled')),
    case_id     TEXT,
    not_before  TEXT,                   -- held: not judged before this time
    deleted_at  TEXT,                   -- the author deleted the message: nothing more of it is taken
    enqueued_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (platform, server_id, message_id, revision)
);
INSERT INTO queue_0007 (id, platform, server_id, message_id, revision, text_digest, revised_at, state,
                        case_id, enqueued_at, updated_at)
SELECT id, platform, server_id, message_id, 1, NULL, enqueued_at, state, case_id, enqueued_at, updated_at
FROM queue;
-- A waiting revision's message, in a table of its own: deleted once the revision is decided,
-- superseded or cancelled, it frees whole pages (rows go in queue order), which new messages
-- reuse. Cleared in place in the queue row, it left every page two-thirds empty for good.
CREATE TABLE queue_messages (
    queue_id INTEGER PRIMARY KEY,       -- the queue row's id
    message  TEXT NOT NULL              -- Message as JSON
);
INSERT INTO queue_messages (queue_id, message) SELECT id, message FROM queue WHERE message IS NOT NULL;
DROP TABLE queue;
ALTER TABLE queue_0007 RENAME TO queue;
-- Workers read the waiting revisions a page at a time, oldest first, through this index.
CREATE INDEX queue_waiting ON queue (id) WHERE state IN ('pending', 'acting');
CREATE INDEX queue_case ON queue (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE case_notes (
    id        INTEGER PRIMARY KEY,
    case_id   TEXT NOT NULL REFERENCES cases (id),
    kind      TEXT NOT NULL CHECK (kind IN ('edited', 'deleted')),
    revision  INTEGER,                  -- edited: the revision the edit made
    at        TEXT NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id);

CREATE TABLE work (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    subject     TEXT NOT NULL,          -- what it is about, e.g. "appeal 12"
    payload     TEXT NOT NULL,          -- JSON input of the work; emptied once finished
    state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    detail      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX work_waiting ON work (id) WHERE state = 'pending';
-- The same work is never queued twice at once (two clicks on "second opinion").
CREATE UNIQUE INDEX work_once ON work (kind, subject) WHERE state = 'pending';

-- The model's reasoning about a clean message, kept a day (to answer "why was this not
-- flagged?"), in a table of its own for the same reason as queue_messages: the upkeep deletes
-- a day's rows, whole pages at a time. Violations and reviewed cases keep theirs in verdicts.
CREATE TABLE clean_reasoning (
    verdict_id INTEGER PRIMARY KEY,     -- verdicts.id
    reasoning  TEXT NOT NULL,
    raw_output TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX clean_reasoning_time ON clean_reasoning (created_at);
INSERT INTO clean_reasoning (verdict_id, reasoning, raw_output, created_at)
SELECT v.id, v.reasoning, v.raw_output, v.created_at FROM verdicts v JOIN cases c ON c.id = v.case_id
WHERE c.status = 'clean' AND v.appeal_id IS NULL AND (v.reasoning != '' OR v.raw_output IS NOT NULL);
UPDATE verdicts SET reasoning = '', raw_output = NULL WHERE id IN (SELECT verdict_id FROM clean_reasoning);
