-- One instance's decisions, newest first: the keyset pages and counts of
-- spotdb_experiment_log_list/count filtered by instance.  Schema v1 has
-- only single-column indexes, so the planner combined instance_id with
-- decision bitmaps, whose cost grows with the whole table; with this
-- index a page and a count cost the same at 5M rows as at 100k
-- (docs/performance.md).  It only adds an index, so libraries built for
-- version 1 may open a database that has it:
-- spotdb: compatible

CREATE INDEX idx_experiment_logs_instance_time
    ON experiment_logs (instance_id, execution_time DESC, id DESC);
