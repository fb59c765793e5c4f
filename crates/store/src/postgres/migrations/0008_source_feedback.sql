-- Version 8: feedback for the sources of hashes (crate::console::NewSourceFeedback), as
-- SQLite's version 11.
-- - One row per (case, exchange, entry, signal, verdict): a decision recorded twice never
--   votes twice.
-- - `source_feedback_pending` is what the sender reads: the pending rows of one exchange, by
--   id, due or not (few: a row waits only while its exchange fails); `source_feedback_listed`
--   serves an exchange's listing.

CREATE TABLE source_feedback (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      BIGINT NOT NULL REFERENCES cases (id),
    exchange     TEXT COLLATE "C" NOT NULL,
    source_id    TEXT COLLATE "C" NOT NULL,
    signal_type  TEXT COLLATE "C" NOT NULL,
    value        TEXT COLLATE "C" NOT NULL,
    verdict      TEXT COLLATE "C" NOT NULL,
    actor        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    status       TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   TEXT,
    sent_at      BIGINT,
    updated_at   BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    UNIQUE (case_id, exchange, source_id, signal_type, value, verdict)
);
CREATE INDEX source_feedback_pending ON source_feedback (exchange, status, id);
CREATE INDEX source_feedback_listed ON source_feedback (exchange, id);
