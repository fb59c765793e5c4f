-- Version 16: source feedback's "recorded once" key over digests of its text (sg_digest, as
-- provenance's key in version 1). A btree entry holds at most about 2,700 bytes, so the plain
-- key of version 8 could not record feedback on a long value (a vPDQ hash runs to
-- kilobytes) or a long entry id, which SQLite records. The constraint's name was chosen by
-- PostgreSQL, so it is looked up.
DO $$
DECLARE
    old_key name;
BEGIN
    SELECT conname INTO STRICT old_key FROM pg_constraint
     WHERE conrelid = 'source_feedback'::regclass AND contype = 'u';
    EXECUTE format('ALTER TABLE source_feedback DROP CONSTRAINT %I', old_key);
END
$$;
CREATE UNIQUE INDEX source_feedback_once ON source_feedback
    (case_id, sg_digest(exchange), sg_digest(source_id), sg_digest(signal_type),
     sg_digest(value), sg_digest(verdict));
