-- requires: timescaledb
-- 0002: TimescaleDB features, applied only where the extension is available (docker-compose, GitLab CI).
-- Plain PostgreSQL keeps the same tables, columns and indexes from 0001 and the same queries work.

CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('telemetry_agg', by_range('bucket', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('score_history', by_range('time', INTERVAL '7 days'), migrate_data => true, if_not_exists => true);
SELECT create_hypertable('scoring_log', by_range('time', INTERVAL '1 day'), migrate_data => true, if_not_exists => true);

ALTER TABLE telemetry_agg SET (timescaledb.compress, timescaledb.compress_segmentby = 'turbine_id', timescaledb.compress_orderby = 'bucket DESC');
ALTER TABLE score_history SET (timescaledb.compress, timescaledb.compress_segmentby = 'turbine_id', timescaledb.compress_orderby = 'time DESC');

SELECT add_compression_policy('telemetry_agg', INTERVAL '14 days', if_not_exists => true);
SELECT add_compression_policy('score_history', INTERVAL '30 days', if_not_exists => true);

SELECT add_retention_policy('telemetry_agg', INTERVAL '400 days', if_not_exists => true);
SELECT add_retention_policy('score_history', INTERVAL '3 years', if_not_exists => true);
SELECT add_retention_policy('scoring_log', INTERVAL '90 days', if_not_exists => true);
