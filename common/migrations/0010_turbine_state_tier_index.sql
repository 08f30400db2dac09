-- 0010: the tier index of turbine_state holds only the turbines outside the 'low' tier.
-- Why: a sweep rewrites every turbine's row with a new score; score is in every secondary index of the
-- table, so no update is HOT and each row adds an entry to each index (0001: primary key, rank, tier,
-- site). Tiers are score bands (models/policy.py; 'unknown' aside): a ranking filtered on the majority
-- tier ('low') already walks turbine_state_rank_idx from the top, so the tier index only serves the rare
-- tiers (critical, high, moderate, unknown), and those are the rows it now holds. A partial index gets
-- no entry for a row outside its predicate: a sweep of a mostly 'low' fleet skips it for most rows.
-- The API's ranking (api/repository.py `ranking`) keeps its plans: tier = ANY('{critical,high}')
-- implies tier <> 'low' (custom plans, as psycopg's prepared statements run it), tier 'low' uses
-- turbine_state_rank_idx as before; the site index stays (20 turbines per site: a site filter without
-- it scans the table). Measured, 10,000 sweep rows, PostgreSQL backend CPU of the upsert (medians of
-- interleaved runs, load 6-10): first sweep 241 -> 204 ms, later sweeps 264 -> 234 ms; WAL records
-- 70,000 -> 60,000. Ranking at 100,000 turbines / 5,000 sites: same plans, same times (1-6 ms).

DROP INDEX IF EXISTS turbine_state_tier_idx;
CREATE INDEX IF NOT EXISTS turbine_state_tier_rare_idx ON turbine_state (tier, score DESC, turbine_id)
    WHERE tier <> 'low';
