-- Renames a column: code built for an older version breaks.
-- (spotdb: compatible is deliberately absent.)

ALTER TABLE step_a RENAME COLUMN note TO remark;
