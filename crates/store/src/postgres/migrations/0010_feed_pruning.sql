-- Version 10: pruning the change feed (Store::prune_feed). `floor` is the first position the
-- feed can still serve (1 until something is pruned); `feed_followers` is where each serving
-- process stands, so pruning keeps what the slowest one needs.
ALTER TABLE feed_position ADD COLUMN floor BIGINT NOT NULL DEFAULT 1;
CREATE TABLE feed_followers (
    name      TEXT COLLATE "C" PRIMARY KEY,
    position  BIGINT NOT NULL,
    snapshot  BIGINT,
    seen_at   BIGINT NOT NULL
);
