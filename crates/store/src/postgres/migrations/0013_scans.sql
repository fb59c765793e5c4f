-- Version 13: backfill scans (crate::scan::ScanStore), as SQLite's version 14.
-- - Workers claim jobs with `FOR UPDATE SKIP LOCKED`: `scan_jobs_open` finds a scan's next
--   claimable job without walking done ones.
-- - A result's key is its primary key within the scan: an item processed twice (a lease that
--   ran out under a slow worker) is recorded once.
-- - No foreign keys from the results or jobs: a scan's rows are written by many workers at
--   once, and a per-row check would take a share lock on the scan row the counters update.

CREATE TABLE scans (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        TEXT COLLATE "C" NOT NULL,
    target        TEXT COLLATE "C" NOT NULL,
    job_size      BIGINT NOT NULL,
    state         TEXT COLLATE "C" NOT NULL
                  CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
    listed        BOOLEAN NOT NULL DEFAULT FALSE,
    jobs          BIGINT NOT NULL DEFAULT 0,
    jobs_done     BIGINT NOT NULL DEFAULT 0,
    items         BIGINT NOT NULL DEFAULT 0,
    items_done    BIGINT NOT NULL DEFAULT 0,
    items_failed  BIGINT NOT NULL DEFAULT 0,
    items_matched BIGINT NOT NULL DEFAULT 0,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE TABLE scan_jobs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id     BIGINT NOT NULL,
    ordinal     BIGINT NOT NULL,
    items       TEXT NOT NULL,
    item_count  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT COLLATE "C",
    lease_until BIGINT,
    done_at     BIGINT,
    UNIQUE (scan_id, ordinal)
);
CREATE INDEX scan_jobs_open ON scan_jobs (scan_id, ordinal) WHERE done_at IS NULL;
CREATE TABLE scan_results (
    scan_id     BIGINT NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    error       TEXT,
    pdq         TEXT COLLATE "C",
    quality     BIGINT,
    md5         TEXT COLLATE "C",
    sha256      TEXT COLLATE "C",
    size        BIGINT,
    matched     BOOLEAN NOT NULL,
    verdict     TEXT COLLATE "C",
    submission  TEXT COLLATE "C",
    worker      TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (scan_id, key)
);
