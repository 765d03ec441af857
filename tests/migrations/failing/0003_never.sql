-- Never reached: 0002 fails first.
CREATE TABLE never_d (id integer);
