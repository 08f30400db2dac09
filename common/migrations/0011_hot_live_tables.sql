-- 0011: room on each page of the live tables for HOT updates (fillfactor 50).
-- Why: every live batch upserts one row per touched turbine in `turbines` (last_event_time) and in
-- `telemetry_latest` (the newest reading, ~1 KB with its measurements). At the default fillfactor (100)
-- a page is full, so an update rarely finds room for the new row version on its page: it is not HOT,
-- adds an entry to every index and leaves a dead version elsewhere (live bench, 1,000 turbines,
-- 5,000 events/s: 2-9 % of telemetry_latest updates HOT, the 1,000-row table grew to 14-27 MB in
-- two minutes; with fillfactor 50: 100 % HOT, 1.4-2.7 MB). Both tables hold one row per turbine, so
-- half-empty pages cost little. telemetry_agg (one new row per turbine and 10 minutes, kept 400 days)
-- keeps the default: its size matters more. Existing pages keep their fill; new and rewritten pages
-- (VACUUM FULL, pg_repack) get the room.
ALTER TABLE turbines SET (fillfactor = 50);
ALTER TABLE telemetry_latest SET (fillfactor = 50);
