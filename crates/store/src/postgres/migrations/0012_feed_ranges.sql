-- Version 12: one feed row for all the hashes one import adds, as SQLite's `added_range`: an
-- `added_range` row stands for `count` consecutive positions ending at `seq`, the signals with
-- consecutive ids from `signal_id`. A ten-million-hash import writes one feed row instead of
-- ten million. A follower expanding a range finds the signals deleted since by their
-- `removed` row, hence the index.
ALTER TABLE changes ADD COLUMN count BIGINT;
ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
ALTER TABLE changes DROP CONSTRAINT changes_check;
ALTER TABLE changes ADD CONSTRAINT changes_kind_check
    CHECK (kind IN ('added', 'removed', 'updated', 'added_range'));
ALTER TABLE changes ADD CONSTRAINT changes_check
    CHECK (kind = 'updated'
           OR (kind = 'added_range' AND content_id IS NOT NULL AND signal_id IS NOT NULL
               AND count >= 1 AND count <= seq)
           OR (kind IN ('added', 'removed') AND content_id IS NOT NULL
               AND signal_id IS NOT NULL AND signal_type IS NOT NULL AND value IS NOT NULL));
CREATE INDEX changes_removed_by_signal ON changes (signal_id) WHERE kind = 'removed';
