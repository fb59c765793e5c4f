//! The on-disk schema and its forward migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied; `PRAGMA application_id` marks
//! the file as ours so a stray SQLite file given as the data path is refused rather than
//! migrated. Migrations only ever append: a released entry of [`MIGRATIONS`] is never edited,
//! because databases in the field already ran it.

use rusqlite::{Connection, TransactionBehavior};

use super::row::db_err;
use crate::{Error, Result};

/// Marks a SQLite file as a Safeguard store (`b"SGST"` as a big-endian integer).
pub(crate) const APPLICATION_ID: i32 = 0x5347_5354;

/// Migration `i` takes a database from version `i` to `i + 1`.
///
/// Notes on version 1:
/// - Every table uses `AUTOINCREMENT` so ids are never reused after a delete: content and
///   signal ids leave the process (match results, the indexes, HMA clients), and a reused id
///   would silently point an old reference at new content.
/// - `signals.bank_id` duplicates `contents.bank_id` (a content item never changes bank) so
///   that a startup scan of every signal reads one table in rowid order, with no join.
/// - `changes` has no foreign keys on purpose: a `removed` row must outlive the signal,
///   content and bank it describes.
/// - `STRICT` tables make SQLite refuse a value of the wrong type instead of storing it, so a
///   bug cannot write a row that later reads back as `Corrupt`.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE banks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    enabled_ratio  REAL    NOT NULL,
    pdq_threshold  INTEGER NOT NULL CHECK (pdq_threshold BETWEEN 0 AND 4294967295),
    kind           TEXT    NOT NULL CHECK (kind IN ('standard', 'allow_list')),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE contents (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id             INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
    metadata            TEXT,
    note                TEXT,
    disable_until_ts    INTEGER NOT NULL,
    original_media_uri  TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
-- Paging a bank's content, and the cascade when a bank is deleted.
CREATE INDEX contents_by_bank ON contents (bank_id);
-- The matcher loads disabled items at startup; they are few, so a partial index keeps it cheap.
CREATE INDEX contents_disabled ON contents (id, disable_until_ts) WHERE disable_until_ts <> 0;

CREATE TABLE signals (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id   INTEGER NOT NULL REFERENCES contents (id) ON DELETE CASCADE,
    bank_id      INTEGER NOT NULL,
    signal_type  TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    UNIQUE (content_id, signal_type)
) STRICT;
-- Exact lookups by value (imports that deduplicate, operators' queries).
CREATE INDEX signals_by_value ON signals (signal_type, value);

CREATE TABLE changes (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL CHECK (kind IN ('added', 'removed', 'updated')),
    bank_id      INTEGER NOT NULL,
    content_id   INTEGER,
    signal_id    INTEGER,
    signal_type  TEXT,
    value        TEXT,
    at           INTEGER NOT NULL,
    CHECK (kind = 'updated' OR (content_id IS NOT NULL AND signal_id IS NOT NULL
                                AND signal_type IS NOT NULL AND value IS NOT NULL))
) STRICT;

CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id         TEXT    NOT NULL UNIQUE,
    name           TEXT    NOT NULL,
    secret_sha256  TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
) STRICT;
"#,
    // Version 2: hash-list sources.
    // - `changes` is rebuilt (SQLite cannot change a CHECK in place) to allow `added_range`:
    //   one row standing for `count` consecutive signal ids added by one import, numbered by
    //   `count` consecutive seqs ending at `seq`. A ten-million-hash import writes one feed row
    //   instead of ten million. The old rows and the sequence position are carried over.
    // - `provenance` keeps one record per (bank, hash, source), outliving the signal, so a
    //   withdrawn hash stays in the audit trail. WITHOUT ROWID: the key is the only index the
    //   bulk path has to maintain for it. Existing signals get the implicit source `api`.
    // - `exchanges` holds each exchange's checkpoint, written in the same transaction as the
    //   entries it follows.
    r#"
CREATE TABLE changes_v2 (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL CHECK (kind IN ('added', 'removed', 'updated', 'added_range')),
    bank_id      INTEGER NOT NULL,
    content_id   INTEGER,
    signal_id    INTEGER,
    signal_type  TEXT,
    value        TEXT,
    at           INTEGER NOT NULL,
    count        INTEGER,
    CHECK (kind = 'updated'
           OR (kind = 'added_range' AND content_id IS NOT NULL AND signal_id IS NOT NULL
               AND count >= 1)
           OR (kind IN ('added', 'removed') AND content_id IS NOT NULL
               AND signal_id IS NOT NULL AND signal_type IS NOT NULL AND value IS NOT NULL))
) STRICT;
INSERT INTO changes_v2 (seq, kind, bank_id, content_id, signal_id, signal_type, value, at)
    SELECT seq, kind, bank_id, content_id, signal_id, signal_type, value, at FROM changes
    ORDER BY seq;
-- The position may be past the last row (pruned feed); carry it over exactly.
DELETE FROM sqlite_sequence WHERE name = 'changes_v2';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'changes_v2', seq FROM sqlite_sequence WHERE name = 'changes';
DROP TABLE changes;
ALTER TABLE changes_v2 RENAME TO changes;
-- A follower expanding an `added_range` finds signals deleted since by their `removed` row.
CREATE INDEX changes_removed_by_signal ON changes (signal_id) WHERE kind = 'removed';

-- Imports ask "does the bank hold this hash?" for every entry: with bank_id in the index the
-- answer comes from the index alone, without a random read of each signal row.
DROP INDEX signals_by_value;
CREATE INDEX signals_by_value ON signals (signal_type, value, bank_id);

CREATE TABLE provenance (
    bank_id         INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
    signal_type     TEXT    NOT NULL,
    value           TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    source_id       TEXT,
    classification  TEXT,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    withdrawn_at    INTEGER,
    PRIMARY KEY (bank_id, signal_type, value, source)
) STRICT, WITHOUT ROWID;
-- NCMEC withdraws entries by id: find a source's records by source id.
CREATE INDEX provenance_by_source_id ON provenance (bank_id, source, source_id)
    WHERE source_id IS NOT NULL;
INSERT OR IGNORE INTO provenance (bank_id, signal_type, value, source, first_seen, last_seen)
    SELECT s.bank_id, s.signal_type, s.value, 'api', c.created_at, c.created_at
    FROM signals s JOIN contents c ON c.id = s.content_id ORDER BY c.created_at;

CREATE TABLE exchanges (
    name             TEXT    PRIMARY KEY,
    bank_id          INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
    checkpoint       TEXT,
    last_success_at  INTEGER,
    last_error       TEXT,
    last_error_at    INTEGER,
    entries          INTEGER NOT NULL DEFAULT 0
) STRICT;
"#,
    // Exchanges created through the API. Credentials are sealed by the server (its master
    // key never reaches the store); `settings` is a JSON object of the non-secret fields.
    r#"
CREATE TABLE stored_exchanges (
    name                TEXT    PRIMARY KEY,
    kind                TEXT    NOT NULL,
    settings            TEXT    NOT NULL,
    sealed_credentials  BLOB,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;
"#,
    // Version 4: banks gain the `csam` kind, tags and a default classification (policy rules
    // test them). SQLite cannot change a CHECK in place, so the table is rebuilt by its
    // documented procedure; `migrate` runs with foreign keys off and checks them before
    // committing, so the rebuild neither cascades nor leaves a dangling reference.
    r#"
CREATE TABLE banks_v4 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    enabled_ratio   REAL    NOT NULL,
    pdq_threshold   INTEGER NOT NULL CHECK (pdq_threshold BETWEEN 0 AND 4294967295),
    kind            TEXT    NOT NULL CHECK (kind IN ('standard', 'allow_list', 'csam')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    tags            TEXT    NOT NULL DEFAULT '',
    classification  TEXT
) STRICT;
INSERT INTO banks_v4 (id, name, enabled, enabled_ratio, pdq_threshold, kind, created_at,
                      updated_at)
    SELECT id, name, enabled, enabled_ratio, pdq_threshold, kind, created_at, updated_at
    FROM banks ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'banks_v4';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'banks_v4', seq FROM sqlite_sequence WHERE name = 'banks';
DROP TABLE banks;
ALTER TABLE banks_v4 RENAME TO banks;
"#,
    // Version 5: acting on matches (crate::action).
    // - `rules` keeps every version of every rule; `position` is set on the versions in force
    //   and NULL on superseded or deleted ones, so the set in force is one index range.
    // - `submissions.platform_id` is UNIQUE: the idempotency key of re-submission.
    // - At most one active (open or in review) case per account: a partial unique index, so
    //   two racing submissions cannot open two.
    // - `evidence.wrapped_key` becomes NULL when the object is destroyed (crypto-shredding);
    //   the row stays as the record of the deletion.
    // - `events` is the transactional outbox; `deliveries` has one row per (event, endpoint)
    //   written in the same transaction, so delivery state survives a crash.
    r#"
CREATE TABLE rules (
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    position    INTEGER,
    spec        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) STRICT;
CREATE UNIQUE INDEX rules_in_force ON rules (position) WHERE position IS NOT NULL;
CREATE TABLE rules_meta (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    generation  INTEGER NOT NULL
) STRICT;
INSERT INTO rules_meta (one, generation) VALUES (1, 0);

CREATE TABLE cases (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    account           TEXT,
    state             TEXT    NOT NULL
        CHECK (state IN ('open', 'in_review', 'decided', 'reported', 'closed')),
    queue             TEXT    NOT NULL,
    priority          INTEGER NOT NULL,
    report_candidate  INTEGER NOT NULL CHECK (report_candidate IN (0, 1)),
    labels            TEXT    NOT NULL,
    items             INTEGER NOT NULL,
    legal_hold        INTEGER NOT NULL DEFAULT 0 CHECK (legal_hold IN (0, 1)),
    decision          TEXT,
    reported_at       INTEGER,
    opened_at         INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX cases_active_by_account ON cases (account)
    WHERE state IN ('open', 'in_review') AND account IS NOT NULL;
CREATE INDEX cases_by_state ON cases (state, id);
CREATE INDEX cases_by_queue ON cases (queue, id);

CREATE TABLE case_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    note        TEXT
) STRICT;
CREATE INDEX case_history_by_case ON case_history (case_id, id);

CREATE TABLE submissions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    platform_id   TEXT    NOT NULL UNIQUE,
    fingerprint   TEXT    NOT NULL,
    account       TEXT,
    verdict       TEXT    NOT NULL,
    rule_id       TEXT,
    rule_version  INTEGER,
    context       TEXT    NOT NULL,
    result        TEXT    NOT NULL,
    case_id       INTEGER REFERENCES cases (id),
    event_ids     TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX submissions_by_case ON submissions (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE evidence (
    object_id        TEXT    PRIMARY KEY,
    submission_id    INTEGER NOT NULL REFERENCES submissions (id),
    case_id          INTEGER NOT NULL REFERENCES cases (id),
    blob_key         TEXT    NOT NULL,
    wrapped_key      BLOB,
    key_fingerprint  TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    md5              TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    media_kind       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    deletion_reason  TEXT
) STRICT;
CREATE INDEX evidence_by_case ON evidence (case_id);
CREATE INDEX evidence_live ON evidence (created_at) WHERE deleted_at IS NULL;

CREATE TABLE access_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    object  TEXT    NOT NULL
) STRICT;
CREATE INDEX access_log_by_object ON access_log (object, id);

CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    url              TEXT    NOT NULL,
    event_types      TEXT    NOT NULL,
    sealed_secret    BLOB    NOT NULL,
    enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason  TEXT,
    failing_since    INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    event_type  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT    NOT NULL
) STRICT;

CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id        INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq         INTEGER NOT NULL REFERENCES events (seq),
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts          INTEGER NOT NULL,
    first_attempt_at  INTEGER,
    next_attempt_at   INTEGER NOT NULL,
    last_status       INTEGER,
    last_error        TEXT,
    done_at           INTEGER
) STRICT;
CREATE INDEX deliveries_pending ON deliveries (webhook_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (webhook_id, id) WHERE state = 'dead';

CREATE TABLE delivery_attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id       INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at                INTEGER NOT NULL,
    status            INTEGER,
    latency_ms        INTEGER NOT NULL,
    response_excerpt  TEXT    NOT NULL,
    error             TEXT
) STRICT;
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
"#,
    // Accounts and relationships for contact decisions (`/v1/accounts`). A relationship is
    // one row per unordered pair (a < b); `none` is the absence of a row.
    r#"
CREATE TABLE accounts (
    id                    TEXT    PRIMARY KEY,
    age_band              TEXT    NOT NULL,
    assurance_method      TEXT    NOT NULL,
    assurance_confidence  REAL    NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE account_relationships (
    a             TEXT    NOT NULL,
    b             TEXT    NOT NULL,
    relationship  TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
) STRICT, WITHOUT ROWID;
CREATE INDEX account_relationships_by_b ON account_relationships (b);
"#,
    // Version 7: figures for a past period and the two-person rule.
    // - `case_history.decision` keeps the decision with the line that made it, so a case
    //   decided again later does not rewrite what an earlier period's figures said.
    // - Both indexes serve reading one period in order (figures), by keyset pages.
    r#"
ALTER TABLE case_history ADD COLUMN decision TEXT;
CREATE INDEX case_history_by_time ON case_history (at, id);
CREATE INDEX submissions_by_time ON submissions (created_at, id);
"#,
    // Version 8: the audit log (crate::audit). `seq` is the entry's position in the Merkle
    // tree, from 0, with no gaps. Triggers refuse UPDATE and DELETE: the software never
    // changes an entry, and a mistaken or malicious statement fails loudly here before the
    // tree's signed heads would have to catch it.
    r#"
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY CHECK (seq >= 0),
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    leaf_hash  BLOB    NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE audit_tree_heads (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    size       INTEGER NOT NULL CHECK (size >= 0),
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    timestamp  INTEGER NOT NULL,
    signature  BLOB    NOT NULL
) STRICT;
"#,
    // Version 9: report filings (crate::report) and sealed secrets. `state` is the filer's
    // journal (JSON), replaced on every step; `phase` and `report_id` repeat what a server
    // queries by. `transcript` is the vault's record of the sealed transcript, once filed.
    r#"
CREATE TABLE report_filings (
    id           TEXT    PRIMARY KEY,
    case_id      INTEGER NOT NULL,
    destination  TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    phase        TEXT    NOT NULL,
    report_id    TEXT,
    last_error   TEXT,
    transcript   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX report_filings_by_case ON report_filings (case_id, created_at);
CREATE TABLE secrets (
    name        TEXT    PRIMARY KEY,
    sealed      BLOB    NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
    // Version 10: the review console (crate::console).
    // - `case_queue_counts` keeps, per queue, how many cases are open and in review, kept by
    //   triggers on `cases` in the same statement as every change: the console's queue page
    //   must answer in milliseconds at a million open cases, and counting them is a scan of
    //   a million index entries however the index is laid out. The oldest case of a queue is
    //   an index seek (`cases_oldest`). `n` has no CHECK on purpose: were a count ever to
    //   drift, the figure is wrong (and read as at least 0), but the case writes that fire
    //   the triggers must not start failing.
    // - `cases_claim` is the claim order: the next case of a queue is the first entry of
    //   the (queue, 'open') range, with no sort.
    // - A lease is one row per case (the holder of a live one owns the case); a lapsed one
    //   stays until someone claims the case, so its holder can still release it.
    // - Reveals and review time are kept per user for exposure figures; `annotations` is a
    //   JSON array (an annotation may contain any character).
    r#"
CREATE INDEX cases_claim ON cases (queue, state, priority DESC, opened_at, id);
CREATE INDEX cases_oldest ON cases (queue, state, opened_at);
CREATE INDEX cases_by_account ON cases (account, id);

CREATE TABLE case_queue_counts (
    queue  TEXT    NOT NULL,
    state  TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) STRICT, WITHOUT ROWID;
INSERT INTO case_queue_counts (queue, state, n)
    SELECT queue, state, count(*) FROM cases WHERE state IN ('open', 'in_review')
    GROUP BY queue, state;
CREATE TRIGGER cases_count_insert AFTER INSERT ON cases
WHEN NEW.state IN ('open', 'in_review')
BEGIN
    INSERT INTO case_queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cases_count_delete AFTER DELETE ON cases
WHEN OLD.state IN ('open', 'in_review')
BEGIN
    UPDATE case_queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;
CREATE TRIGGER cases_count_update AFTER UPDATE OF state, queue ON cases
WHEN OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue
BEGIN
    UPDATE case_queue_counts SET n = n - 1
        WHERE OLD.state IN ('open', 'in_review') AND queue = OLD.queue AND state = OLD.state;
    INSERT INTO case_queue_counts (queue, state, n)
        SELECT NEW.queue, NEW.state, 1 WHERE NEW.state IN ('open', 'in_review')
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TABLE console_users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    roles             TEXT    NOT NULL,
    password_hash     TEXT,
    totp_secret       BLOB,
    setup_token_hash  TEXT,
    setup_expires_at  INTEGER,
    failed_logins     INTEGER NOT NULL CHECK (failed_logins BETWEEN 0 AND 4294967295),
    locked_until      INTEGER,
    last_totp_step    INTEGER,
    disabled          INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX console_users_by_setup_token ON console_users (setup_token_hash)
    WHERE setup_token_hash IS NOT NULL;

CREATE TABLE console_sessions (
    id_hash       TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES console_users (id),
    csrf          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE case_leases (
    case_id     INTEGER PRIMARY KEY REFERENCES cases (id),
    holder      INTEGER NOT NULL REFERENCES console_users (id),
    claimed_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX case_leases_by_expiry ON case_leases (expires_at);

CREATE TABLE case_skips (
    holder   INTEGER NOT NULL REFERENCES console_users (id),
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    at       INTEGER NOT NULL,
    PRIMARY KEY (holder, case_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE console_reveals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES console_users (id),
    case_id     INTEGER NOT NULL REFERENCES cases (id),
    object_id   TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
) STRICT;
CREATE INDEX console_reveals_by_user ON console_reveals (user_id, started_at);
CREATE INDEX console_reveals_by_object ON console_reveals (object_id, id);
CREATE INDEX console_reveals_by_time ON console_reveals (started_at);

CREATE TABLE console_review_time (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id  INTEGER NOT NULL REFERENCES console_users (id),
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    ms       INTEGER NOT NULL CHECK (ms >= 0),
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX console_review_time_by_user ON console_review_time (user_id, at);
CREATE INDEX console_review_time_by_time ON console_review_time (at);

CREATE TABLE console_item_labels (
    case_id         INTEGER NOT NULL REFERENCES cases (id),
    object_id       TEXT    NOT NULL,
    classification  TEXT    NOT NULL,
    annotations     TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (case_id, object_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE console_settings (
    scope       TEXT    PRIMARY KEY,
    json        TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
    // Version 11: feedback for the sources of hashes (crate::console::NewSourceFeedback).
    // - One row per (case, exchange, entry, signal, verdict): a decision recorded twice never
    //   votes twice.
    // - `source_feedback_pending` is what the sender reads: one exchange's pending rows, by
    //   id, due or not (few: a row waits only while its exchange fails);
    //   `source_feedback_listed` serves an exchange's listing.
    r#"
CREATE TABLE source_feedback (
    id           INTEGER PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES cases (id),
    exchange     TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    signal_type  TEXT    NOT NULL,
    value        TEXT    NOT NULL,
    verdict      TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error   TEXT,
    sent_at      INTEGER,
    updated_at   INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    UNIQUE (case_id, exchange, source_id, signal_type, value, verdict)
) STRICT;
CREATE INDEX source_feedback_pending ON source_feedback (exchange, status, id);
CREATE INDEX source_feedback_listed ON source_feedback (exchange, id);
"#,
    // Version 12: a lease on each filing (`ReportStore::lease_filing`), so that of several
    // processes sharing a database one drives a filing at a time.
    r#"
ALTER TABLE report_filings ADD COLUMN lease_owner TEXT;
ALTER TABLE report_filings ADD COLUMN lease_until INTEGER;
"#,
    // Version 13: pruning the change feed (`Store::prune_feed`). `feed_floor` is the first
    // position the feed can still serve (1 until something is pruned); `feed_followers` is
    // where each serving process stands, so pruning keeps what the slowest one needs.
    r#"
CREATE TABLE feed_floor (
    one    INTEGER PRIMARY KEY CHECK (one = 1),
    floor  INTEGER NOT NULL
) STRICT;
INSERT INTO feed_floor (one, floor) VALUES (1, 1);
CREATE TABLE feed_followers (
    name      TEXT    PRIMARY KEY,
    position  INTEGER NOT NULL,
    snapshot  INTEGER,
    seen_at   INTEGER NOT NULL
) STRICT;
"#,
    // Version 14: backfill scans (`crate::scan::ScanStore`).
    // - `scan_jobs_open` finds the next claimable job of a scan without walking done ones.
    // - A result's key is its primary key within the scan: an item processed twice (a lease
    //   that ran out under a slow worker) is recorded once.
    r#"
CREATE TABLE scans (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    target        TEXT    NOT NULL,
    job_size      INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'paused', 'cancelled', 'done')),
    listed        INTEGER NOT NULL DEFAULT 0 CHECK (listed IN (0, 1)),
    jobs          INTEGER NOT NULL DEFAULT 0,
    jobs_done     INTEGER NOT NULL DEFAULT 0,
    items         INTEGER NOT NULL DEFAULT 0,
    items_done    INTEGER NOT NULL DEFAULT 0,
    items_failed  INTEGER NOT NULL DEFAULT 0,
    items_matched INTEGER NOT NULL DEFAULT 0,
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
) STRICT;
CREATE TABLE scan_jobs (
    id          INTEGER PRIMARY KEY,
    scan_id     INTEGER NOT NULL REFERENCES scans (id),
    ordinal     INTEGER NOT NULL,
    items       TEXT    NOT NULL,
    item_count  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    done_at     INTEGER,
    UNIQUE (scan_id, ordinal)
) STRICT;
CREATE INDEX scan_jobs_open ON scan_jobs (scan_id, ordinal) WHERE done_at IS NULL;
CREATE TABLE scan_results (
    scan_id     INTEGER NOT NULL REFERENCES scans (id),
    key         TEXT    NOT NULL,
    error       TEXT,
    pdq         TEXT,
    quality     INTEGER,
    md5         TEXT,
    sha256      TEXT,
    size        INTEGER,
    matched     INTEGER NOT NULL CHECK (matched IN (0, 1)),
    verdict     TEXT,
    submission  TEXT,
    worker      TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (scan_id, key)
) STRICT, WITHOUT ROWID;
"#,
    // Version 15: named leases (`ReportStore::take_lease`), for work that one process at a
    // time does and that has no row of its own to hold a lease (a send through the NCA's API).
    r#"
CREATE TABLE leases (
    name  TEXT    PRIMARY KEY,
    owner TEXT    NOT NULL,
    until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
    // Version 16: when a destroyed evidence record's blob was deleted. Destroying the data key
    // is the deletion; deleting the blob reclaims its storage and can fail on its own (a
    // bucket down), so the sweeper finds what is left by this column and tries again. Records
    // destroyed before this version have none: their blobs are tried once more (deleting a
    // blob already gone succeeds).
    r#"
ALTER TABLE evidence ADD COLUMN blob_deleted_at INTEGER;
CREATE INDEX evidence_blob_left ON evidence (deleted_at)
    WHERE deleted_at IS NOT NULL AND blob_deleted_at IS NULL;
"#,
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    // A slice of a handful of SQL strings cannot approach i64::MAX entries.
    i64::try_from(MIGRATIONS.len()).expect("migration count fits in i64")
}

/// Brings the database up to [`current_version`], in one transaction. Refuses a database from
/// a newer build (it may have columns or meanings this build would silently break) and a
/// SQLite file that is not ours.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    // A table rebuild (version 4) drops a table other tables reference: with foreign keys on,
    // the drop would cascade into them. The pragma is a no-op inside a transaction, so it is
    // set around it; `foreign_key_check` below proves the rebuilt schema consistent.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(db_err)?;
    let out = migrate_in_transaction(conn);
    let restored = conn
        .pragma_update(None, "foreign_keys", true)
        .map_err(db_err);
    out.and(restored)
}

fn migrate_in_transaction(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    let app_id: i32 = tx
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(db_err)?;
    let known = current_version();
    if version > known {
        return Err(Error::Corrupt(format!(
            "database schema version {version} is newer than this build knows ({known}); \
             run a newer Safeguard"
        )));
    }
    if version == 0 {
        let objects: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if objects != 0 || app_id != 0 {
            return Err(Error::Corrupt(
                "not a Safeguard database (SQLite file with foreign tables)".into(),
            ));
        }
    } else if app_id != APPLICATION_ID {
        return Err(Error::Corrupt(format!(
            "not a Safeguard database (application_id {app_id:#x})"
        )));
    }
    // `version` is in 0..=known here, so the cast cannot truncate.
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    if version < known {
        let dangling: i64 = tx
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(db_err)?;
        if dangling != 0 {
            return Err(Error::Corrupt(format!(
                "{dangling} rows reference missing rows after the schema upgrade"
            )));
        }
        // PRAGMA takes no bound parameters; both values are constants of this build.
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {known};"
        ))
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteOptions, SqliteStore, Store};

    /// Records destroyed before version 16 have no record of their blob's deletion: the
    /// upgraded store lists them for the sweeper, and not the live ones.
    #[test]
    fn version_16_lists_the_blobs_of_records_destroyed_before_it() {
        use crate::ActionStore;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v15.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
            for sql in &MIGRATIONS[..15] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 15;
                 INSERT INTO cases (account, state, queue, priority, report_candidate, labels,
                                    items, legal_hold, opened_at, updated_at)
                     VALUES ('u', 'open', 'csam', 1, 0, '', 2, 0, 10, 10);
                 INSERT INTO submissions (platform_id, fingerprint, account, verdict, context,
                                          result, case_id, event_ids, created_at)
                     VALUES ('p1', 'f', 'u', 'block', '{{}}', '{{}}', 1, '[]', 10),
                            ('p2', 'f', 'u', 'block', '{{}}', '{{}}', 1, '[]', 10);
                 INSERT INTO evidence (object_id, submission_id, case_id, blob_key, wrapped_key,
                                       key_fingerprint, sha256, md5, size, media_kind,
                                       created_at, deleted_at, deletion_reason)
                     VALUES ('gone', 1, 1, 'ab/cd/gone', NULL, 'fp', 'x', 'y', 1, 'image',
                             10, 20, 'retention_expired'),
                            ('live', 2, 1, 'ab/cd/live', x'00', 'fp', 'x', 'y', 1, 'image',
                             10, NULL, NULL);"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
        let left: Vec<String> = store
            .evidence_blobs_left(10)
            .unwrap()
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        assert_eq!(left, vec!["gone"]);
        store.mark_blob_deleted("gone", 30).unwrap();
        assert!(store.evidence_blobs_left(10).unwrap().is_empty());
    }

    /// A version-9 database with cases upgrades to the console's version 10 with its queue
    /// counts taken from the cases already there; the triggers keep them from then on.
    #[test]
    fn version_10_counts_existing_cases() {
        use crate::console::QueueStats;
        use crate::{ActionStore, ConsoleStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
            for sql in &MIGRATIONS[..9] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 9;
                 INSERT INTO cases (account, state, queue, priority, report_candidate, labels,
                                    items, legal_hold, opened_at, updated_at)
                     VALUES (NULL, 'open', 'csam', 1, 0, '', 1, 0, 100, 100),
                            (NULL, 'in_review', 'csam', 1, 0, '', 1, 0, 50, 100),
                            (NULL, 'decided', 'csam', 1, 0, '', 1, 0, 10, 100),
                            (NULL, 'open', 'spam', 1, 0, '', 1, 0, 300, 300);"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
        let stats = |queue: &str, open: u64, in_review: u64, oldest: i64| QueueStats {
            queue: queue.into(),
            open,
            in_review,
            oldest_opened_at: Some(oldest),
        };
        assert_eq!(
            store.queue_stats().unwrap(),
            vec![stats("csam", 1, 1, 50), stats("spam", 1, 0, 300)]
        );
        store
            .transition_case(
                4,
                &crate::action::CaseTransition {
                    from: "open".into(),
                    to: "closed".into(),
                    actor: "t".into(),
                    note: None,
                    decision: None,
                    labels: Vec::new(),
                    at: 400,
                },
                &mut |_| vec![],
            )
            .unwrap();
        assert_eq!(store.queue_stats().unwrap(), vec![stats("csam", 1, 1, 50)]);
    }

    /// A version-1 database (as the previous release wrote it) upgrades in place: rows, ids,
    /// the feed and its position survive; existing signals get the `api` source; the new
    /// tables work.
    #[test]
    fn version_1_upgrades_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;
                 INSERT INTO banks (id, name, enabled, enabled_ratio, pdq_threshold, kind,
                                    created_at, updated_at)
                     VALUES (1, 'OLD', 1, 1.0, 31, 'standard', 100, 100);
                 INSERT INTO contents (id, bank_id, disable_until_ts, created_at, updated_at)
                     VALUES (1, 1, 0, 100, 100), (2, 1, 0, 200, 200);
                 INSERT INTO signals (id, content_id, bank_id, signal_type, value)
                     VALUES (1, 1, 1, 'md5', 'aa'), (2, 2, 1, 'md5', 'bb');
                 INSERT INTO changes (seq, kind, bank_id, content_id, signal_id, signal_type,
                                      value, at)
                     VALUES (1, 'added', 1, 1, 1, 'md5', 'aa', 100),
                            (2, 'added', 1, 2, 2, 'md5', 'bb', 200);
                 -- A pruned feed: the position is past the last row.
                 UPDATE sqlite_sequence SET seq = 7 WHERE name = 'changes';"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
        assert_eq!(store.last_seq().unwrap(), 7);
        let mut feed = Vec::new();
        store
            .changes_since(0, usize::MAX, &mut |s, c| feed.push((s, c)))
            .unwrap();
        assert_eq!(feed.len(), 2);
        assert_eq!(feed[1].0, 2);
        let p = store.provenance(1, "md5", "bb").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].source.as_str(), p[0].first_seen), ("api", 200));
        // New writes continue the sequences.
        let out = store
            .apply_source_batch(
                1,
                &crate::SourceBatch {
                    source: "file:x",
                    seen_at: 1,
                    upserts: &[crate::SourceEntry {
                        signal_type: "md5".into(),
                        value: "cc".into(),
                        ..Default::default()
                    }],
                    removals: &[],
                    checkpoint: None,
                },
            )
            .unwrap();
        assert_eq!(out.added, 1);
        assert_eq!(store.last_seq().unwrap(), 8);
        let c = store.list_content(1, None, 10).unwrap();
        assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(store.list_stored_exchanges().unwrap().is_empty());
        // The version 4 rebuild of `banks` kept the bank, its id sequence and everything
        // referencing it, and foreign keys are back on afterwards (the delete cascades).
        let b = store.bank(1).unwrap().unwrap();
        assert_eq!(
            (b.name.as_str(), b.tags.len(), b.classification),
            ("OLD", 0, None)
        );
        let csam = store
            .create_bank(&crate::NewBank {
                kind: crate::BankKind::Csam,
                tags: vec!["hotline".into()],
                classification: Some("A1".into()),
                ..crate::conformance::new_bank("NEW")
            })
            .unwrap();
        assert_eq!(csam.id, 2);
        assert_eq!(store.bank(2).unwrap().unwrap(), csam);
        let temp = store
            .create_bank(&crate::conformance::new_bank("TEMP"))
            .unwrap();
        store
            .add_content(temp.id, &crate::conformance::new_content(&[("md5", "dd")]))
            .unwrap();
        store.delete_bank(temp.id).unwrap();
        assert_eq!(store.counts().unwrap().contents, 3);
        drop(store);
        // Every later migration ran (the stored exchanges table of version 3 is there), and
        // reopening is a no-op at the current version.
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, current_version());
        drop(conn);
        SqliteStore::open(&SqliteOptions::new(&path)).unwrap();
    }
}
