-- Version 3: accounts and relationships for contact decisions (crate::account), as SQLite's
-- version 6. A relationship is one row per unordered pair (a < b in byte order, which
-- COLLATE "C" compares); `none` is the absence of a row.

CREATE TABLE accounts (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    age_band              TEXT COLLATE "C" NOT NULL,
    assurance_method      TEXT COLLATE "C" NOT NULL,
    assurance_confidence  DOUBLE PRECISION NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE account_relationships (
    a             TEXT COLLATE "C" NOT NULL,
    b             TEXT COLLATE "C" NOT NULL,
    relationship  TEXT COLLATE "C" NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
CREATE INDEX account_relationships_by_b ON account_relationships (b);
