-- 0009: checkpointed windows stored in the heap row, their bookkeeping out of it, neither compressed.
-- Why: a worker's restore reads every window of its partitions (~7.7 KB each, scorer/checkpoint.py).
-- Stored EXTENDED (the default) a window went out of line in ~4 TOAST chunks, each fetched by an index
-- probe at read time, and PostgreSQL tried (and failed: the window codec leaves < 25 % to gain) to
-- pglz-compress it at every write. MAIN keeps it in its row (toast_tuple_target raised to the page's
-- maximum so a window up to ~8 KB fits); EXTERNAL moves the aux JSON (~1.4 KB) out of line uncompressed
-- first, which makes the room. Measured on 10,000 bench windows (server-side COPY to /dev/null, same
-- run): 198-224 -> 114-159 ms to read; INSERT of the 10,000 rows 2.3 -> 1.0 s. A larger window (wide
-- counts) still goes out of line: MAIN allows it when the row cannot fit. Rows written before 0009 keep
-- their old storage until their next checkpoint rewrites them. No data change, no table rewrite.

ALTER TABLE scorer_windows ALTER COLUMN state SET STORAGE MAIN;
ALTER TABLE scorer_windows ALTER COLUMN aux SET STORAGE EXTERNAL;
ALTER TABLE scorer_windows SET (toast_tuple_target = 8160);
