-- 0005: fleet register (common/fleet.py, `python -m common fleet import FILE`). Plain PostgreSQL.
-- Each turbine's metadata lives on its `turbines` row. The commissioning date reuses `commissioned_on`
-- and the rated power `rated_power_kw` (both from 0001). A turbine imported from a register before it
-- sends any data has a row too (last_event_time NULL): it shows in the fleet as never scored.
-- `fitted_sensors` NULL = not declared (every sensor is taken as fitted); otherwise the contract signal
-- names (common.contracts.SIGNALS) the turbine measures. `register_updated_at`: last import that changed
-- the row (NULL = never in a register).

ALTER TABLE turbines ADD COLUMN IF NOT EXISTS manufacturer text
    CONSTRAINT turbines_manufacturer_len CHECK (char_length(manufacturer) BETWEEN 1 AND 128);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS model text
    CONSTRAINT turbines_model_len CHECK (char_length(model) BETWEEN 1 AND 128);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS rotor_diameter_m double precision
    CONSTRAINT turbines_rotor_diameter_range CHECK (rotor_diameter_m > 0 AND rotor_diameter_m <= 400);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS hub_height_m double precision
    CONSTRAINT turbines_hub_height_range CHECK (hub_height_m > 0 AND hub_height_m <= 400);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS latitude double precision
    CONSTRAINT turbines_latitude_range CHECK (latitude >= -90 AND latitude <= 90);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS longitude double precision
    CONSTRAINT turbines_longitude_range CHECK (longitude >= -180 AND longitude <= 180);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS fitted_sensors text[]
    CONSTRAINT turbines_fitted_sensors_not_empty CHECK (cardinality(fitted_sensors) > 0);
ALTER TABLE turbines ADD COLUMN IF NOT EXISTS register_updated_at timestamptz;

COMMENT ON COLUMN turbines.fitted_sensors IS
    'Contract signals the turbine measures (fleet register); NULL = not declared (all sensors)';
COMMENT ON COLUMN turbines.commissioned_on IS 'Commissioning date (fleet register commissioning_date)';
COMMENT ON COLUMN turbines.register_updated_at IS 'Last fleet register import that changed this row';
