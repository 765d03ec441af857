CREATE TABLE step_c (note text DEFAULT 'semi;colon' NOT NULL);
