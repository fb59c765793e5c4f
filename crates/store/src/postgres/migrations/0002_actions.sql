-- Version 2: acting on matches (crate::action), as SQLite's version 5.
-- - `rules` keeps every version of every rule; `position` is set on the versions in force.
-- - `submissions.platform_id` is UNIQUE: the idempotency key of re-submission.
-- - At most one active (open or in review) case per account: a partial unique index.
-- - `evidence.wrapped_key` becomes NULL when the object is destroyed (crypto-shredding).
-- - `events` is the transactional outbox; `deliveries` one row per (event, endpoint).

CREATE TABLE rules (
    id          TEXT COLLATE "C"   NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    position    BIGINT,
    spec        TEXT COLLATE "C"   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE UNIQUE INDEX rules_in_force ON rules (position) WHERE position IS NOT NULL;
CREATE TABLE rules_meta (
    one         BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    generation  BIGINT  NOT NULL
);
INSERT INTO rules_meta (one, generation) VALUES (TRUE, 0);

CREATE TABLE cases (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account           TEXT COLLATE "C",
    state             TEXT COLLATE "C"    NOT NULL
        CHECK (state IN ('open', 'in_review', 'decided', 'reported', 'closed')),
    queue             TEXT COLLATE "C"    NOT NULL,
    priority          BIGINT  NOT NULL,
    report_candidate  BOOLEAN NOT NULL,
    labels            TEXT COLLATE "C"    NOT NULL,
    items             BIGINT  NOT NULL,
    legal_hold        BOOLEAN NOT NULL DEFAULT FALSE,
    decision          TEXT COLLATE "C",
    reported_at       BIGINT,
    opened_at         BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX cases_active_by_account ON cases (sg_digest(account))
    WHERE state IN ('open', 'in_review') AND account IS NOT NULL;
CREATE INDEX cases_by_account ON cases USING hash (account);
CREATE INDEX cases_by_state ON cases (state, id);
CREATE INDEX cases_by_queue ON cases (queue, id);

CREATE TABLE case_history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    at          BIGINT NOT NULL,
    actor       TEXT COLLATE "C"   NOT NULL,
    action      TEXT COLLATE "C"   NOT NULL,
    from_state  TEXT COLLATE "C",
    to_state    TEXT COLLATE "C",
    note        TEXT COLLATE "C"
);
CREATE INDEX case_history_by_case ON case_history (case_id, id);

CREATE TABLE submissions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform_id   TEXT COLLATE "C"   NOT NULL,
    fingerprint   TEXT COLLATE "C"   NOT NULL,
    account       TEXT COLLATE "C",
    verdict       TEXT COLLATE "C"   NOT NULL,
    rule_id       TEXT COLLATE "C",
    rule_version  BIGINT,
    context       TEXT COLLATE "C"   NOT NULL,
    result        TEXT COLLATE "C"   NOT NULL,
    case_id       BIGINT REFERENCES cases (id),
    event_ids     TEXT COLLATE "C"   NOT NULL,
    created_at    BIGINT NOT NULL
);
-- Text keys of any length: see sg_digest in version 1.
CREATE UNIQUE INDEX submissions_platform_id_unique ON submissions (sg_digest(platform_id));
CREATE INDEX submissions_by_platform_id ON submissions USING hash (platform_id);
CREATE INDEX submissions_by_case ON submissions (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE evidence (
    object_id        TEXT COLLATE "C"   PRIMARY KEY,
    submission_id    BIGINT NOT NULL REFERENCES submissions (id),
    case_id          BIGINT NOT NULL REFERENCES cases (id),
    blob_key         TEXT COLLATE "C"   NOT NULL,
    wrapped_key      BYTEA,
    key_fingerprint  TEXT COLLATE "C"   NOT NULL,
    sha256           TEXT COLLATE "C"   NOT NULL,
    md5              TEXT COLLATE "C"   NOT NULL,
    size             BIGINT NOT NULL,
    media_kind       TEXT COLLATE "C"   NOT NULL,
    created_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    deletion_reason  TEXT COLLATE "C"
);
CREATE INDEX evidence_by_case ON evidence (case_id);
CREATE INDEX evidence_live ON evidence (created_at) WHERE deleted_at IS NULL;

CREATE TABLE access_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT COLLATE "C"   NOT NULL,
    action  TEXT COLLATE "C"   NOT NULL,
    object  TEXT COLLATE "C"   NOT NULL
);
CREATE INDEX access_log_by_object ON access_log (object, id);

CREATE TABLE webhooks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url              TEXT COLLATE "C"    NOT NULL,
    event_types      TEXT COLLATE "C"    NOT NULL,
    sealed_secret    BYTEA   NOT NULL,
    enabled          BOOLEAN NOT NULL,
    disabled_reason  TEXT COLLATE "C",
    failing_since    BIGINT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT COLLATE "C"   NOT NULL UNIQUE,
    event_type  TEXT COLLATE "C"   NOT NULL,
    created_at  BIGINT NOT NULL,
    body        TEXT COLLATE "C"   NOT NULL
);

CREATE TABLE deliveries (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id        BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq         BIGINT NOT NULL REFERENCES events (seq),
    state             TEXT COLLATE "C"   NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts          BIGINT NOT NULL,
    first_attempt_at  BIGINT,
    next_attempt_at   BIGINT NOT NULL,
    last_status       BIGINT,
    last_error        TEXT COLLATE "C",
    done_at           BIGINT
);
CREATE INDEX deliveries_pending ON deliveries (webhook_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (webhook_id, id) WHERE state = 'dead';

CREATE TABLE delivery_attempts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at                BIGINT NOT NULL,
    status            BIGINT,
    latency_ms        BIGINT NOT NULL,
    response_excerpt  TEXT COLLATE "C"   NOT NULL,
    error             TEXT COLLATE "C"
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
