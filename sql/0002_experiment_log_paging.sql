-- One instance's decisions, newest first: the keyset pages and counts of
-- spotdb_experiment_log_list/count filtered by instance (and decision).
-- Schema v1 has only single-column indexes, so the planner combined
-- instance_id with decision bitmaps, whose cost grows with the whole
-- table; with this index a page and a count cost the same at 5M rows as
-- at 100k (docs/performance.md).  It only adds an index, so libraries
-- built for version 1 may open a database that has it:
-- spotdb: compatible
--
-- IF NOT EXISTS: on a large table, build it first, without blocking
-- writes, with CREATE INDEX CONCURRENTLY under this name and definition;
-- the migration then has nothing to do.

CREATE INDEX IF NOT EXISTS idx_experiment_logs_instance_time
    ON experiment_logs (instance_id, decision, execution_time DESC, id DESC);
