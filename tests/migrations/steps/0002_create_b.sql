CREATE TABLE step_b (id integer PRIMARY KEY, a integer REFERENCES step_a(id));
INSERT INTO step_a VALUES (1), (2);
