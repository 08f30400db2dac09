-- 0004: durable fallback of the scorer's dead letters. Plain PostgreSQL.
-- When the dead-letter topic does not take a letter (topic missing, broker refusing it, timeouts), the
-- scorer writes the envelope here in the same transaction as the batch, before the source records are
-- acked: nothing is lost and the stream never stops for a dead letter. A periodic task re-publishes
-- the rows once the topic works again and sets published_at (at-least-once on the topic).

CREATE TABLE IF NOT EXISTS scorer_dead_letters (
    id                bigserial PRIMARY KEY,
    consumer_group    text NOT NULL,
    source_topic      text NOT NULL,
    source_partition  integer NOT NULL,
    source_offset     bigint NOT NULL,
    code              text NOT NULL,
    reason            text NOT NULL,
    record_key        bytea,             -- key for the dead-letter record (the source key when short)
    envelope          bytea NOT NULL,    -- common.contracts.dead_letter_bytes(): the exact record value
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,       -- NULL until re-published to the dead-letter topic
    claimed_at        timestamptz,       -- a worker re-publishing it (stale claims are taken over)
    UNIQUE (consumer_group, source_topic, source_partition, source_offset)
);
CREATE INDEX IF NOT EXISTS scorer_dead_letters_pending_idx
    ON scorer_dead_letters (consumer_group, id) WHERE published_at IS NULL;
