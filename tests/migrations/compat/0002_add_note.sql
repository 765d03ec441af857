-- Adds a nullable column: code built for version 1 keeps working.
-- spotdb: compatible

ALTER TABLE step_a ADD COLUMN note text;
