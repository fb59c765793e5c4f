-- Version 15: when a destroyed evidence record's blob was deleted (SQLite version 16). Destroying
-- the data key is the deletion; deleting the blob reclaims its storage and can fail on its own
-- (a bucket down), so the sweeper finds what is left by this column and tries again. Records
-- destroyed before this version have none: their blobs are tried once more (deleting a blob
-- already gone succeeds).
ALTER TABLE evidence ADD COLUMN blob_deleted_at BIGINT;
CREATE INDEX evidence_blob_left ON evidence (deleted_at)
    WHERE deleted_at IS NOT NULL AND blob_deleted_at IS NULL;
