-- Version 9: a lease on each filing (ReportStore::lease_filing), so that of several processes
-- sharing the database one drives a filing at a time.
ALTER TABLE report_filings ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE report_filings ADD COLUMN lease_until BIGINT;
