-- Version 7: the review console (crate::console), as SQLite's version 10.
-- - `case_queue_counts` keeps, per queue, how many cases are open and in review, kept by a
--   trigger on `cases` in the same transaction as every change: the console's queue page must
--   answer in milliseconds at a million open cases, and counting them is a scan of a million
--   index entries however the index is laid out. The oldest case of a queue is an index seek
--   (`cases_oldest`). `n` has no CHECK on purpose: were a count ever to drift, the figure is
--   wrong (and read as at least 0), but the case writes that fire the trigger must not fail.
-- - `cases_claim` is the claim order: the next case of a queue is the first entry of the
--   (queue, 'open') range, with no sort.
-- - A lease is one row per case; a lapsed one stays until someone claims the case, so its
--   holder can still release it.
-- - Reveals and review time are kept per user for exposure figures; `annotations` is a JSON
--   array (an annotation may contain any character).

CREATE INDEX cases_claim ON cases (queue, state, priority DESC, opened_at, id);
CREATE INDEX cases_oldest ON cases (queue, state, opened_at);

CREATE TABLE case_queue_counts (
    queue  TEXT COLLATE "C" NOT NULL,
    state  TEXT COLLATE "C" NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (queue, state)
);
INSERT INTO case_queue_counts (queue, state, n)
    SELECT queue, state, count(*) FROM cases WHERE state IN ('open', 'in_review')
    GROUP BY queue, state;

CREATE FUNCTION sg_count_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF OLD.state IN ('open', 'in_review') THEN
            UPDATE case_queue_counts SET n = n - 1
                WHERE queue = OLD.queue AND state = OLD.state;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF NEW.state IN ('open', 'in_review') THEN
            INSERT INTO case_queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
                ON CONFLICT (queue, state) DO UPDATE SET n = case_queue_counts.n + 1;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_count_insert_delete AFTER INSERT OR DELETE ON cases
    FOR EACH ROW EXECUTE FUNCTION sg_count_cases();
CREATE TRIGGER cases_count_update AFTER UPDATE OF state, queue ON cases
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.queue IS DISTINCT FROM NEW.queue)
    EXECUTE FUNCTION sg_count_cases();

CREATE TABLE console_users (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              TEXT COLLATE "C" NOT NULL UNIQUE,
    roles             TEXT COLLATE "C" NOT NULL,
    password_hash     TEXT COLLATE "C",
    totp_secret       BYTEA,
    setup_token_hash  TEXT COLLATE "C",
    setup_expires_at  BIGINT,
    failed_logins     BIGINT  NOT NULL CHECK (failed_logins BETWEEN 0 AND 4294967295),
    locked_until      BIGINT,
    last_totp_step    BIGINT,
    disabled          BOOLEAN NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX console_users_by_setup_token ON console_users (setup_token_hash)
    WHERE setup_token_hash IS NOT NULL;

CREATE TABLE console_sessions (
    id_hash       TEXT COLLATE "C" PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES console_users (id),
    csrf          TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE case_leases (
    case_id     BIGINT PRIMARY KEY REFERENCES cases (id),
    holder      BIGINT NOT NULL REFERENCES console_users (id),
    claimed_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX case_leases_by_expiry ON case_leases (expires_at);

CREATE TABLE case_skips (
    holder   BIGINT NOT NULL REFERENCES console_users (id),
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    at       BIGINT NOT NULL,
    PRIMARY KEY (holder, case_id)
);

CREATE TABLE console_reveals (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES console_users (id),
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    object_id   TEXT COLLATE "C" NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX console_reveals_by_user ON console_reveals (user_id, started_at);
CREATE INDEX console_reveals_by_object ON console_reveals (object_id, id);
CREATE INDEX console_reveals_by_time ON console_reveals (started_at);

CREATE TABLE console_review_time (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  BIGINT NOT NULL REFERENCES console_users (id),
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    ms       BIGINT NOT NULL CHECK (ms >= 0),
    at       BIGINT NOT NULL
);
CREATE INDEX console_review_time_by_user ON console_review_time (user_id, at);
CREATE INDEX console_review_time_by_time ON console_review_time (at);

CREATE TABLE console_item_labels (
    case_id         BIGINT NOT NULL REFERENCES cases (id),
    object_id       TEXT COLLATE "C" NOT NULL,
    classification  TEXT COLLATE "C" NOT NULL,
    annotations     TEXT COLLATE "C" NOT NULL,
    actor           TEXT COLLATE "C" NOT NULL,
    at              BIGINT NOT NULL,
    PRIMARY KEY (case_id, object_id)
);

CREATE TABLE console_settings (
    scope       TEXT COLLATE "C" PRIMARY KEY,
    json        TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL
);
