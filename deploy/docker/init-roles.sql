-- Roles and privileges of the cockpit database, run once by the TimescaleDB container at its first start
-- (docker-entrypoint-initdb.d, as cockpit_admin on the `cockpit` database). Idempotent: on a volume made
-- before this file changed, run it again by hand:
--   docker compose exec -T timescaledb psql -U cockpit_admin -d cockpit -v ON_ERROR_STOP=1 < deploy/docker/init-roles.sql
-- Works on plain PostgreSQL too (the TimescaleDB extension is created only where it is available).
--
-- Who does what: the migrations run as cockpit_admin and own the tables; cockpit_writer (scorer) reads and
-- writes them; cockpit_reader (API) only reads. The default privileges below give both roles their rights on
-- every table and sequence cockpit_admin creates from now on (migrations to come included); the GRANTs
-- cover what exists already. Passwords equal role names: local development only (COCKPIT_ENVIRONMENT=local).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_writer') THEN
    CREATE ROLE cockpit_writer LOGIN PASSWORD 'cockpit_writer';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cockpit_reader') THEN
    CREATE ROLE cockpit_reader LOGIN PASSWORD 'cockpit_reader';
  END IF;
  IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  END IF;
END
$$;
ALTER ROLE cockpit_reader SET default_transaction_read_only = on;

GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO cockpit_writer;
GRANT CONNECT ON DATABASE :"DBNAME" TO cockpit_reader;
GRANT USAGE ON SCHEMA public TO cockpit_writer, cockpit_reader;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO cockpit_writer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO cockpit_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO cockpit_reader;

ALTER DEFAULT PRIVILEGES FOR ROLE cockpit_admin IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO cockpit_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE cockpit_admin IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO cockpit_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE cockpit_admin IN SCHEMA public
  GRANT SELECT ON TABLES TO cockpit_reader;
