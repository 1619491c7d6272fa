-- How a policy's author notice reads (the self-harm policy sends support, not a removal
-- notice), whether its flags may quote the content, and decisions a moderator took about
-- their own message (only a server admin may: the audit marks them too).

ALTER TABLE policies ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE policies ADD COLUMN author_notice TEXT NOT NULL DEFAULT 'removal';
ALTER TABLE policies ADD COLUMN notice_text TEXT NOT NULL DEFAULT '';

ALTER TABLE policy_drafts ADD COLUMN sensitive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE policy_drafts ADD COLUMN author_notice TEXT NOT NULL DEFAULT 'removal';
ALTER TABLE policy_drafts ADD COLUMN notice_text TEXT NOT NULL DEFAULT '';

ALTER TABLE human_decisions ADD COLUMN self_review INTEGER NOT NULL DEFAULT 0;

-- Effects waiting to be carried out (a decision taken in another process leaves them for the
-- bot that runs the platform): found every few seconds without reading every effect.
CREATE INDEX effects_unfinished ON effects (case_id) WHERE outcome IN ('pending', 'started');
