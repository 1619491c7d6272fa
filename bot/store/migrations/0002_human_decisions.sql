-- Human decisions on cases. Each one is a label for evaluating and improving policies:
-- confirm and uphold say "violation", dismiss and overturn say "no violation".

CREATE TABLE human_decisions (
    id           INTEGER PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases (id),
    server_id    TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('confirm', 'dismiss', 'uphold', 'overturn')),
    violation    INTEGER NOT NULL CHECK (violation IN (0, 1)),
    moderator_id TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    at           TEXT NOT NULL
);
-- A case is reviewed once, and its appeal decided once.
CREATE UNIQUE INDEX human_review_once ON human_decisions (case_id) WHERE action IN ('confirm', 'dismiss');
CREATE UNIQUE INDEX human_appeal_once ON human_decisions (case_id) WHERE action IN ('uphold', 'overturn');
CREATE INDEX human_decisions_server ON human_decisions (server_id, at);
