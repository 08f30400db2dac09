-- 0003: scorer checkpoints. Plain PostgreSQL.
-- The scorer keeps per-turbine feature windows in memory and checkpoints the changed ones here
-- periodically, in the same transaction as the next offset to consume per partition. On partition
-- assignment a worker restores the windows of its partitions and skips records below the offset.
-- The daily sweep also reads the windows here, so it sees the whole fleet whichever worker owns them.

CREATE TABLE IF NOT EXISTS scorer_windows (
    consumer_group   text NOT NULL,
    turbine_id       text NOT NULL,
    site_id          text NOT NULL,
    topic            text NOT NULL,
    partition        integer NOT NULL,
    last_event_time  timestamptz,
    state            bytea NOT NULL,   -- models.features.FeatureWindow.to_bytes()
    aux              bytea NOT NULL,   -- scorer.state.TurbineState.aux_bytes() (JSON)
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, turbine_id)
);
CREATE INDEX IF NOT EXISTS scorer_windows_partition_idx ON scorer_windows (consumer_group, topic, partition);

CREATE TABLE IF NOT EXISTS scorer_offsets (
    consumer_group   text NOT NULL,
    topic            text NOT NULL,
    partition        integer NOT NULL,
    next_offset      bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
