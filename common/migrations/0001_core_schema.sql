-- 0001: core schema of the cockpit. Plain PostgreSQL; 0002 turns time-series tables into
-- TimescaleDB hypertables when the extension is available. Every unique key of a time-series
-- table contains its time column, as hypertables require.

CREATE TABLE IF NOT EXISTS turbines (
    turbine_id       text PRIMARY KEY,
    site_id          text NOT NULL,
    rated_power_kw   double precision,
    commissioned_on  date,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_event_time  timestamptz
);
CREATE INDEX IF NOT EXISTS turbines_site_idx ON turbines (site_id);

-- Latest measurements per turbine ("latest measurements" of the detail view).
CREATE TABLE IF NOT EXISTS telemetry_latest (
    turbine_id   text PRIMARY KEY REFERENCES turbines (turbine_id),
    event_time   timestamptz NOT NULL,
    measurements jsonb NOT NULL,
    status_code  integer NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Ten-minute aggregates of key signals (history charts). Idempotent upsert on (turbine_id, bucket).
CREATE TABLE IF NOT EXISTS telemetry_agg (
    bucket                    timestamptz NOT NULL,
    turbine_id                text NOT NULL,
    samples                   integer NOT NULL,
    wind_speed_ms             double precision,
    power_kw                  double precision,
    ambient_temp_c            double precision,
    gearbox_bearing_temp_c    double precision,
    generator_winding_temp_c  double precision,
    main_bearing_temp_c       double precision,
    converter_temp_c          double precision,
    vibration_mm_s            double precision,
    pitch_hydraulic_pressure_bar double precision,
    PRIMARY KEY (turbine_id, bucket)
);
CREATE INDEX IF NOT EXISTS telemetry_agg_bucket_idx ON telemetry_agg (bucket DESC);

-- Risk assessments over time. ``time`` is the as-of time of the assessment (the event time of the
-- newest reading in the window for stream scores, the sweep's as-of time for sweeps), so re-processing
-- the same events yields the same key and ON CONFLICT DO NOTHING keeps writes idempotent.
CREATE TABLE IF NOT EXISTS score_history (
    time             timestamptz NOT NULL,
    turbine_id       text NOT NULL,
    trigger          text NOT NULL CHECK (trigger IN ('stream', 'sweep', 'manual')),
    score            double precision NOT NULL CHECK (score >= 0 AND score <= 100),
    tier             text NOT NULL CHECK (tier IN ('critical', 'high', 'moderate', 'low', 'unknown')),
    probability      double precision CHECK (probability >= 0 AND probability <= 1),
    ttf_days         double precision,
    ttf_low_days     double precision,
    ttf_high_days    double precision,
    model_version    text NOT NULL,
    run_id           uuid,
    reasons          jsonb NOT NULL DEFAULT '[]'::jsonb,
    data_quality     jsonb NOT NULL DEFAULT '{}'::jsonb,
    scored_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (turbine_id, time, trigger)
);
CREATE INDEX IF NOT EXISTS score_history_time_idx ON score_history (time DESC);
CREATE INDEX IF NOT EXISTS score_history_run_idx ON score_history (run_id) WHERE run_id IS NOT NULL;

-- Current state per turbine: one row each, what the ranking reads.
CREATE TABLE IF NOT EXISTS turbine_state (
    turbine_id       text PRIMARY KEY REFERENCES turbines (turbine_id),
    site_id          text NOT NULL,
    as_of            timestamptz NOT NULL,
    scored_at        timestamptz NOT NULL DEFAULT now(),
    trigger          text NOT NULL,
    score            double precision NOT NULL,
    tier             text NOT NULL CHECK (tier IN ('critical', 'high', 'moderate', 'low', 'unknown')),
    probability      double precision,
    ttf_days         double precision,
    ttf_low_days     double precision,
    ttf_high_days    double precision,
    model_version    text NOT NULL,
    run_id           uuid,
    reasons          jsonb NOT NULL DEFAULT '[]'::jsonb,
    data_quality     jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_event_time  timestamptz
);
CREATE INDEX IF NOT EXISTS turbine_state_rank_idx ON turbine_state (score DESC, turbine_id);
CREATE INDEX IF NOT EXISTS turbine_state_tier_idx ON turbine_state (tier, score DESC, turbine_id);
CREATE INDEX IF NOT EXISTS turbine_state_site_idx ON turbine_state (site_id, score DESC, turbine_id);

-- Full-fleet sweeps (daily, on start-up catch-up, or on demand).
CREATE TABLE IF NOT EXISTS sweep_runs (
    run_id           uuid PRIMARY KEY,
    trigger          text NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'on_demand')),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    status           text NOT NULL CHECK (status IN ('requested', 'running', 'succeeded', 'failed')),
    turbines_scored  integer NOT NULL DEFAULT 0,
    tier_counts      jsonb NOT NULL DEFAULT '{}'::jsonb,
    model_version    text,
    error            text,
    duration_ms      double precision
);
CREATE INDEX IF NOT EXISTS sweep_runs_started_idx ON sweep_runs (started_at DESC NULLS LAST);

-- One row per scoring call (stream micro-batch or sweep): the supervision trail.
CREATE TABLE IF NOT EXISTS scoring_log (
    time             timestamptz NOT NULL DEFAULT now(),
    operation        text NOT NULL CHECK (operation IN ('stream_batch', 'sweep')),
    turbines         integer NOT NULL,
    events           integer NOT NULL DEFAULT 0,
    status           text NOT NULL CHECK (status IN ('ok', 'error')),
    duration_ms      double precision NOT NULL,
    model_version    text,
    worker_id        text,
    error            text
);
CREATE INDEX IF NOT EXISTS scoring_log_time_idx ON scoring_log (time DESC);

-- Liveness of each scorer worker, written periodically (API readiness and freshness read it).
CREATE TABLE IF NOT EXISTS scorer_heartbeats (
    worker_id          text PRIMARY KEY,
    updated_at         timestamptz NOT NULL,
    started_at         timestamptz NOT NULL,
    model_version      text,
    events_per_minute  double precision NOT NULL DEFAULT 0,
    lag_messages       bigint NOT NULL DEFAULT 0,
    lag_seconds        double precision NOT NULL DEFAULT 0,
    details            jsonb NOT NULL DEFAULT '{}'::jsonb
);
