-- Test set: the second statement fails at run time, the first must be
-- rolled back with it.
CREATE TABLE broken_b (id integer PRIMARY KEY);
INSERT INTO broken_b VALUES (1);
INSERT INTO broken_b
VALUES (1 / 0);
CREATE TABLE broken_c (id integer);
