-- Version 4: figures for a past period and the two-person rule, as SQLite's version 7.
-- case_history.decision keeps the decision with the line that made it, so a case decided
-- again later does not rewrite what an earlier period's figures said. Both indexes serve
-- reading one period in order, by keyset pages.

ALTER TABLE case_history ADD COLUMN decision TEXT COLLATE "C";
CREATE INDEX case_history_by_time ON case_history (at, id);
CREATE INDEX submissions_by_time ON submissions (created_at, id);
