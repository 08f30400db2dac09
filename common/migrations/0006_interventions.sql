-- 0006: maintenance interventions (issue 12 point 6). Plain PostgreSQL (TimescaleDB: an ordinary table).
-- One row per intervention the maintenance team records (API POST /v1/turbines/{id}/interventions or
-- `cockpit intervention add`). Times are the fleet's event/data time (the same clock as telemetry
-- event_time, UTC): `planned_for` when kind = 'planned', `done_at` once done; `recorded_at` is the wall
-- clock of the request. `finding` is NULL while planned and required once done.
-- Who writes: the API, through its read-only role (cockpit_reader), which gets INSERT/UPDATE on THIS table
-- only; the API opens an explicit READ WRITE transaction for these two endpoints (its connections default
-- to read-only). The writer role (scorer) gets the usual rights.

CREATE TABLE IF NOT EXISTS interventions (
    id            uuid PRIMARY KEY,
    turbine_id    text NOT NULL REFERENCES turbines (turbine_id),
    kind          text NOT NULL CHECK (kind IN ('planned', 'done')),
    planned_for   timestamptz,
    done_at       timestamptz,
    component     text NOT NULL CHECK (char_length(component) BETWEEN 1 AND 64),
    finding       text CHECK (finding IN ('failure_confirmed', 'no_fault_found', 'preventive_replacement')),
    notes         text CHECK (char_length(notes) <= 2000),
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    recorded_by   text NOT NULL CHECK (char_length(recorded_by) BETWEEN 1 AND 64),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT interventions_kind_times CHECK (
        (kind = 'planned' AND planned_for IS NOT NULL AND done_at IS NULL AND finding IS NULL)
        OR (kind = 'done' AND done_at IS NOT NULL AND finding IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS interventions_turbine_idx
    ON interventions (turbine_id, (COALESCE(done_at, planned_for)) DESC);
CREATE INDEX IF NOT EXISTS interventions_recorded_idx ON interventions (recorded_at DESC);

COMMENT ON TABLE interventions IS 'Maintenance interventions (planned / done) recorded by the maintenance team';
COMMENT ON COLUMN interventions.done_at IS 'Event (data) time the intervention was completed, UTC';
COMMENT ON COLUMN interventions.planned_for IS 'Event (data) time the intervention is planned for, UTC';

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_writer') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON interventions TO cockpit_writer;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_reader') THEN
    GRANT SELECT, INSERT, UPDATE ON interventions TO cockpit_reader;
  END IF;
END
$$;
