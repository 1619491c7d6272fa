-- What an effect made on the platform (the flag post, a DM), so that later effects can
-- edit it: a decision updates the flag post through this reference.
ALTER TABLE effects ADD COLUMN reference TEXT;
