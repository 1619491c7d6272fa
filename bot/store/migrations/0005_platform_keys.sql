-- Everything a server owns is keyed by (platform, server id): a console server "g1" and a
-- Discord guild "g1" share nothing. Existing rows take the platform their server's settings
-- name, else the platform of the server's cases, else "console" (before this version one
-- server id could only ever have one settings row, so that is the platform it ran on).

CREATE TEMP TABLE migration_0005_platforms AS
SELECT ids.server_id AS server_id, COALESCE(
    (SELECT s.platform FROM server_settings s WHERE s.server_id = ids.server_id),
    (SELECT MIN(c.platform) FROM cases c WHERE c.server_id = ids.server_id),
    'console') AS platform
FROM (
    SELECT server_id FROM server_settings UNION SELECT server_id FROM policies
    UNION SELECT server_id FROM policy_state UNION SELECT server_id FROM audit_log
    UNION SELECT server_id FROM policy_drafts UNION SELECT server_id FROM digests_sent
    UNION SELECT server_id FROM health_alerts UNION SELECT server_id FROM human_decisions
) ids;

CREATE TABLE policies_0005 (
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    text        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    author      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (platform, server_id, name, version)
);
INSERT INTO policies_0005 (platform, server_id, name, version, text, description, author, created_at)
SELECT m.platform, p.server_id, p.name, p.version, p.text, p.description, p.author, p.created_at
FROM policies p JOIN migration_0005_platforms m USING (server_id);
DROP TABLE policies;
ALTER TABLE policies_0005 RENAME TO policies;

CREATE TABLE policy_state_0005 (
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    mode        TEXT,                   -- NULL: follow the server's mode
    PRIMARY KEY (platform, server_id, name)
);
INSERT INTO policy_state_0005 (platform, server_id, name, enabled, mode)
SELECT m.platform, s.server_id, s.name, s.enabled, s.mode
FROM policy_state s JOIN migration_0005_platforms m USING (server_id);
DROP TABLE policy_state;
ALTER TABLE policy_state_0005 RENAME TO policy_state;

CREATE TABLE digests_sent_0005 (
    platform   TEXT NOT NULL,
    server_id  TEXT NOT NULL,
    day        TEXT NOT NULL,           -- YYYY-MM-DD (UTC)
    outcome    TEXT NOT NULL,
    sent_at    TEXT NOT NULL,
    PRIMARY KEY (platform, server_id, day)
);
INSERT INTO digests_sent_0005 (platform, server_id, day, outcome, sent_at)
SELECT m.platform, d.server_id, d.day, d.outcome, d.sent_at
FROM digests_sent d JOIN migration_0005_platforms m USING (server_id);
DROP TABLE digests_sent;
ALTER TABLE digests_sent_0005 RENAME TO digests_sent;

CREATE TABLE health_alerts_0005 (
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    alerted_at  TEXT NOT NULL,
    PRIMARY KEY (platform, server_id)
);
INSERT INTO health_alerts_0005 (platform, server_id, alerted_at)
SELECT m.platform, h.server_id, h.alerted_at
FROM health_alerts h JOIN migration_0005_platforms m USING (server_id);
DROP TABLE health_alerts;
ALTER TABLE health_alerts_0005 RENAME TO health_alerts;

ALTER TABLE audit_log ADD COLUMN platform TEXT NOT NULL DEFAULT 'console';
UPDATE audit_log SET platform = (SELECT m.platform FROM migration_0005_platforms m WHERE m.server_id = audit_log.server_id);
DROP INDEX audit_server_time;
CREATE INDEX audit_server_time ON audit_log (platform, server_id, at);

ALTER TABLE policy_drafts ADD COLUMN platform TEXT NOT NULL DEFAULT 'console';
UPDATE policy_drafts SET platform = (SELECT m.platform FROM migration_0005_platforms m WHERE m.server_id = policy_drafts.server_id);
DROP INDEX policy_drafts_server;
CREATE INDEX policy_drafts_server ON policy_drafts (platform, server_id, name);

-- A decision belongs to the server of its case.
ALTER TABLE human_decisions ADD COLUMN platform TEXT NOT NULL DEFAULT 'console';
UPDATE human_decisions SET platform = (SELECT c.platform FROM cases c WHERE c.id = human_decisions.case_id);
DROP INDEX human_decisions_server;
CREATE INDEX human_decisions_server ON human_decisions (platform, server_id, at);

DROP INDEX cases_server_time;
DROP INDEX cases_author;
CREATE INDEX cases_server_time ON cases (platform, server_id, created_at);
CREATE INDEX cases_author ON cases (platform, server_id, author_id, created_at);

CREATE TABLE server_settings_0005 (
    platform    TEXT NOT NULL,
    server_id   TEXT NOT NULL,
    settings    TEXT NOT NULL,          -- ServerSettings as JSON
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (platform, server_id)
);
INSERT INTO server_settings_0005 (platform, server_id, settings, updated_at)
SELECT platform, server_id, settings, updated_at FROM server_settings;
DROP TABLE server_settings;
ALTER TABLE server_settings_0005 RENAME TO server_settings;

DROP TABLE migration_0005_platforms;
