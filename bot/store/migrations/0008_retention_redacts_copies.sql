-- Retention now removes every copy of a message's text, not only the text itself: the
-- model's rationale, reasoning and raw output, the appeal's statement and the effects'
-- reasons (a flag's reason is the rationale). Cases purged before this version still hold
-- those copies; they are removed here, as the retention job removes them from now on.

UPDATE verdicts SET rationale = '', reasoning = '', raw_output = NULL
WHERE case_id IN (SELECT id FROM cases WHERE text_purged_at IS NOT NULL)
  AND (rationale != '' OR reasoning != '' OR raw_output IS NOT NULL);

UPDATE appeals SET statement = ''
WHERE case_id IN (SELECT id FROM cases WHERE text_purged_at IS NOT NULL) AND statement != '';

UPDATE effects SET effect = json_set(effect, '$.reason', '')
WHERE case_id IN (SELECT id FROM cases WHERE text_purged_at IS NOT NULL)
  AND json_extract(effect, '$.reason') != '';
