-- Version 11: the three foreign keys on the bulk tables are dropped. A foreign key checks
-- each inserted row with a trigger (one index probe per row): on a 1,000,000-hash import
-- that was 4.2 s for contents, 5.8 s for signals and more for provenance, a third of the
-- import (docs/performance.md). Every write to these tables is the store's own code, under
-- the store's write lock, and checks the bank or item first (`require_bank`,
-- `require_content`); deleting a bank or an item deletes its rows explicitly, in the same
-- transaction, where the cascades did it before.
ALTER TABLE contents DROP CONSTRAINT contents_bank_id_fkey;
ALTER TABLE signals DROP CONSTRAINT signals_content_id_fkey;
ALTER TABLE provenance DROP CONSTRAINT provenance_bank_id_fkey;
