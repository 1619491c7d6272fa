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
    message     TEXT,                   -- Message as JSON; cleared once decided, superseded or cancelled
    state       TEXT NOT NULL CHECK (state IN ('pending', 'acting', 'done', 'superseded', 'cancelled')),
    case_id     TEXT,
    not_before  TEXT,                   -- held: not judged before this time
    deleted_at  TEXT,                   -- the author deleted the message: nothing more of it is taken
    enqueued_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (platform, server_id, message_id, revision)
);
INSERT INTO queue_0007 (id, platform, server_id, message_id, revision, text_digest, revised_at, message, state,
                        case_id, enqueued_at, updated_at)
SELECT id, platform, server_id, message_id, 1, NULL, enqueued_at, message, state, case_id, enqueued_at, updated_at
FROM queue;
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

-- Verdicts of clean cases whose reasoning is still kept: the upkeep clears it after a day,
-- reading only the rows that still have some.
CREATE INDEX verdicts_clean_reasoning ON verdicts (created_at)
    WHERE violation = 0 AND status = 'decided' AND (reasoning != '' OR raw_output IS NOT NULL);
