-- Version 5: the audit log, as SQLite's version 8. `seq` is the entry's position in the
-- Merkle tree, from 0, with no gaps (appends hold the store's write lock). A trigger refuses
-- UPDATE and DELETE: the software never changes an entry, and a mistaken or malicious
-- statement fails loudly here before the tree's signed heads would have to catch it.

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY CHECK (seq >= 0),
    at         BIGINT NOT NULL,
    actor      TEXT COLLATE "C" NOT NULL,
    action     TEXT COLLATE "C" NOT NULL,
    object     TEXT COLLATE "C" NOT NULL,
    detail     TEXT COLLATE "C" NOT NULL,
    leaf_hash  BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32)
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE audit_tree_heads (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size       BIGINT NOT NULL CHECK (size >= 0),
    root       BYTEA NOT NULL CHECK (octet_length(root) = 32),
    timestamp  BIGINT NOT NULL,
    signature  BYTEA NOT NULL
);
