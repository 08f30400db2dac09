-- 0008: lineage. Each score row records the fleet calibration it was computed with (besides the model
-- version and the trigger, already there): models.fleet_scoring.FleetScorer puts it in the assessment's
-- data_quality["calibration_version"], the scorer copies it into this column (scorer/processing.py).
-- NULL = no calibration involved (full-sensor model without a calibration, or rows written before 0008).
-- Plain PostgreSQL and TimescaleDB (a nullable column without default or constraint can be added to a
-- compressed hypertable). The existing table grants cover the new columns.

ALTER TABLE score_history ADD COLUMN IF NOT EXISTS calibration_version text;
ALTER TABLE turbine_state ADD COLUMN IF NOT EXISTS calibration_version text;

COMMENT ON COLUMN score_history.calibration_version IS
    'Fleet calibration version used for this score (models/calibration_registry); NULL = none';
COMMENT ON COLUMN turbine_state.calibration_version IS
    'Fleet calibration version used for the current score; NULL = none';
