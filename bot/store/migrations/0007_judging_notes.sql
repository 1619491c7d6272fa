-- What judging did with a case's text (normalised, in parts, past the cap, verdicts reused,
-- unknown rule ids, a DM held back), in words without message content; and, for a repeat
-- of a flagged text during a raid, the case whose flag it joined instead of posting its own.

ALTER TABLE cases ADD COLUMN judging_notes TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN joined_case_id TEXT;

-- A flag's joins are counted each time its post is updated during a raid.
CREATE INDEX cases_joined ON cases (joined_case_id) WHERE joined_case_id IS NOT NULL;
