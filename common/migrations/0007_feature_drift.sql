-- 0007: feature drift (issue 12 point 4; scorer/drift.py, docs/models.md "Drift monitoring").
-- Plain PostgreSQL (TimescaleDB: an ordinary table; a few hundred small rows a day per worker).
-- One row per drift run of a scorer worker (every COCKPIT_DRIFT_INTERVAL_S): its overall status, the
-- sampled rows in its window, and a compact summary per site (site_id '*' = the worker's whole
-- population): rows, status, max PSI, counts per severity and the features that drift (or the top 10),
-- each with PSI, KS and severity. The worker deletes runs older than 7 days when it writes.
-- Who writes: the scorer (cockpit_writer); the API reads it (cockpit_reader) for /v1/supervision.

CREATE TABLE IF NOT EXISTS feature_drift (
    computed_at   timestamptz NOT NULL,
    worker_id     text NOT NULL CHECK (char_length(worker_id) BETWEEN 1 AND 200),
    model_version text,
    status        text NOT NULL
        CHECK (status IN ('ok', 'moderate', 'drift', 'insufficient_data', 'not_available')),
    detail        text NOT NULL CHECK (char_length(detail) <= 1000),
    window_rows   integer NOT NULL CHECK (window_rows >= 0),
    summary       jsonb NOT NULL,
    PRIMARY KEY (worker_id, computed_at)
);
CREATE INDEX IF NOT EXISTS feature_drift_computed_idx ON feature_drift (computed_at DESC);

COMMENT ON TABLE feature_drift IS 'Feature drift runs of the scorer workers (PSI/KS against the model reference)';
COMMENT ON COLUMN feature_drift.summary IS
    'Per site (''*'' = the worker''s population): rows, status, max_psi, severities, drifting features';

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_writer') THEN
    GRANT SELECT, INSERT, DELETE ON feature_drift TO cockpit_writer;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_reader') THEN
    GRANT SELECT ON feature_drift TO cockpit_reader;
  END IF;
END
$$;
