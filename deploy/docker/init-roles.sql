-- Roles of the cockpit in the TimescaleDB container (the local stack script does the same natively).
CREATE ROLE cockpit_writer LOGIN PASSWORD 'cockpit_writer';
CREATE ROLE cockpit_reader LOGIN PASSWORD 'cockpit_reader';
ALTER ROLE cockpit_reader SET default_transaction_read_only = on;
ALTER DATABASE cockpit OWNER TO cockpit_writer;
CREATE EXTENSION IF NOT EXISTS timescaledb;
