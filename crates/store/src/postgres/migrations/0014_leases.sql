-- Version 14: named leases (ReportStore::take_lease), for work that one process at a time does
-- across the processes sharing the database and that has no row of its own to hold a lease
-- (a send through the NCA's API).
CREATE TABLE leases (
    name  TEXT COLLATE "C" PRIMARY KEY,
    owner TEXT COLLATE "C" NOT NULL,
    until BIGINT NOT NULL
);
