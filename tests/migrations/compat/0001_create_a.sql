-- Test set: three small steps, for targets and status.
CREATE TABLE step_a (id integer PRIMARY KEY);
