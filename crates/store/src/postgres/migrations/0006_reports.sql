-- Version 6: report filings and sealed secrets, as SQLite's version 9. `state` is the filer's
-- journal (JSON), replaced on every step; `phase` and `report_id` repeat what a server
-- queries by. `transcript` is the vault's record of the sealed transcript, once filed.

CREATE TABLE report_filings (
    id           TEXT COLLATE "C" PRIMARY KEY,
    case_id      BIGINT NOT NULL,
    destination  TEXT COLLATE "C" NOT NULL,
    state        TEXT COLLATE "C" NOT NULL,
    phase        TEXT COLLATE "C" NOT NULL,
    report_id    TEXT COLLATE "C",
    last_error   TEXT COLLATE "C",
    transcript   TEXT COLLATE "C",
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX report_filings_by_case ON report_filings (case_id, created_at);

CREATE TABLE secrets (
    name        TEXT COLLATE "C" PRIMARY KEY,
    sealed      BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL
);
