"""Tests of the Python binding against the real PostgreSQL server.

DATABASE_URL (or SPOTDB_TEST_DATABASE_URL) is an administrative connection
that may CREATE DATABASE: each test gets a database of its own, made and
dropped with psql, and migrated through the binding.  SPOTDB_LIBRARY names
the libspotdb.so under test.  Without a server the tests fail: a database
test never skips.

Each user creation costs one bcrypt at cost 12 (about 0.25 s), so users
are few; most tests use the administrator that schema v1 seeds.
"""

import ast
import copy
import ctypes
import datetime
import itertools
import os
import pathlib
import shutil
import subprocess
import threading
import unittest
import urllib.parse

import spotdb
from spotdb import _native

PACKAGE = pathlib.Path(spotdb.__file__).parent
PSQL = shutil.which("psql") or "/usr/bin/psql"
_serial = itertools.count()

ARN = "arn:aws:iam::%s:role/SpotOptimizer"
NON_ASCII = "Zoë Ångström – 日本語 🚀"


def admin_url():
    url = (os.environ.get("SPOTDB_TEST_DATABASE_URL")
           or os.environ.get("DATABASE_URL"))
    if not url:
        raise RuntimeError("no database: run through 'meson test' with "
                           "DATABASE_URL set to a server where this user "
                           "may CREATE DATABASE")
    return url


def url_with_db(url, name):
    """`url` (a URI or keyword/value settings) naming database `name`."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))
    return "%s dbname='%s'" % (url, name)


def psql(url, sql):
    """Run SQL with psql; the unaligned output without headers."""
    # A sanitizer runtime preloaded for the library (meson does it in
    # sanitized builds) is not for psql.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    done = subprocess.run(
        [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url,
         "-c", sql], capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise AssertionError("psql %r: %s" % (sql, done.stderr))
    return done.stdout.strip()


class Fresh:
    """A database of its own, dropped when closed."""

    def __init__(self):
        self.name = "spotdb_py_%d_%d" % (os.getpid(), next(_serial))
        psql(admin_url(), 'DROP DATABASE IF EXISTS "%s"' % self.name)
        psql(admin_url(), 'CREATE DATABASE "%s"' % self.name)
        self.url = url_with_db(admin_url(), self.name)

    def sql(self, query):
        return psql(self.url, query)

    def drop(self):
        psql(admin_url(), 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
             % self.name)


class DatabaseTest(unittest.TestCase):
    """A fresh database migrated through the binding, and an open,
    schema-checked handle on it as self.db."""

    def setUp(self):
        self.fresh = Fresh()
        self.addCleanup(self.fresh.drop)
        with spotdb.open(self.fresh.url, check_schema=False) as db:
            db.migrate()
        self.db = spotdb.open(self.fresh.url)
        self.addCleanup(self.db.close)

    def sql(self, query):
        return self.fresh.sql(query)

    def admin(self):
        """The administrator schema v1 seeds (login admin / admin)."""
        return self.db.users.get_by_username("admin")

    def account(self, number="123456789012", **values):
        values.setdefault("account_name", "Lab " + number)
        return self.db.accounts.create_for_username(
            "admin", account_id=number, role_arn=ARN % number,
            external_id="ext-" + number, **values)

    def instance(self, account, ec2="i-0123456789abcdef0", **values):
        values.setdefault("instance_type", "c5.large")
        values.setdefault("availability_zone", "ap-south-1a")
        return self.db.instances.create(account_id=account.id,
                                        instance_id=ec2, **values)

    def assertFails(self, cls, code, needle, call, *args, **kwargs):
        with self.assertRaises(cls) as cm:
            call(*args, **kwargs)
        e = cm.exception
        self.assertIsInstance(e, spotdb.Error)
        self.assertEqual(e.code, code)
        self.assertEqual(spotdb.error_names[code], e.name)
        if needle is not None:
            self.assertIn(needle, e.message)
        return e


# ---- the description ------------------------------------------------------


class DescriptionTest(unittest.TestCase):
    """The classes come from spotdb_schema_describe(), and match it."""

    def test_structures_match_the_description(self):
        doc = spotdb.description
        self.assertEqual(doc["format"], _native.FORMAT)
        self.assertEqual(len(doc["relations"]), 8)
        for rel in doc["relations"]:
            spec = spotdb.specs[rel["name"]]
            self.assertEqual(ctypes.sizeof(spec.struct), rel["sizeof"])
            self.assertEqual(spec.struct.nulls.offset, rel["nulls_offset"])
            for col in rel["columns"]:
                field = getattr(spec.struct, col["name"])
                self.assertEqual((field.offset, field.size),
                                 (col["offset"], col["size"]),
                                 "%s.%s" % (rel["name"], col["name"]))
            for part, cls in (("filter", spec.filter_struct),
                              ("rows", spec.rows_struct)):
                self.assertEqual(ctypes.sizeof(cls), rel[part]["sizeof"])
                for m in rel[part]["members"]:
                    self.assertEqual(getattr(cls, m["name"]).offset,
                                     m["offset"])
            self.assertEqual(
                [f.name for f in spotdb._dataclasses.fields(spec.row_class)],
                [c["name"] for c in rel["columns"]])
        for s in doc["structs"]:
            cls = spotdb.native.struct(s["name"])
            self.assertEqual(ctypes.sizeof(cls), s["sizeof"], s["name"])
            for m in s["members"]:
                self.assertEqual(getattr(cls, m["name"]).offset, m["offset"])

    def test_classes_follow_the_description(self):
        """Moving a column in the description moves it in the class: the
        layout is read, not known."""
        rel = copy.deepcopy(spotdb.native.relations["users"])
        for col in rel["columns"]:
            if col["name"] == "last_login":
                col["offset"] += 8
        rel["nulls_offset"] += 8
        rel["sizeof"] += 8
        types = _native.Types()
        cls = types.struct("moved_user", rel["sizeof"],
                           _native.row_members(rel))
        self.assertEqual(cls.last_login.offset,
                         spotdb.specs["users"].struct.last_login.offset + 8)
        self.assertEqual(ctypes.sizeof(cls),
                         ctypes.sizeof(spotdb.specs["users"].struct) + 8)
        # A description ctypes cannot honour is refused, not guessed.
        broken = copy.deepcopy(spotdb.native.relations["users"])
        broken["columns"][1]["size"] = 4
        with self.assertRaises(_native.LayoutError):
            types.struct("broken_user", broken["sizeof"],
                         _native.row_members(broken))

    def test_no_hand_written_layout(self):
        """No Structure subclass is written in the package, and the only
        signature set by hand is spotdb_schema_describe's."""
        sources = sorted(PACKAGE.glob("*.py"))
        self.assertTrue(sources)
        for path in sources:
            text = path.read_text(encoding="utf-8")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef):
                    bases = [ast.unparse(b) if hasattr(ast, "unparse")
                             else getattr(b, "attr", getattr(b, "id", ""))
                             for b in node.bases]
                    self.assertFalse(
                        any("Structure" in b or "Union" in b for b in bases),
                        "%s: class %s is a hand-written layout" %
                        (path.name, node.name))
                if isinstance(node, ast.Attribute) and \
                        node.attr in ("argtypes", "restype") and \
                        isinstance(node.ctx, ast.Store):
                    self.assertEqual(path.name, "_native.py")
            self.assertNotIn("_pack_", text)
        native = (PACKAGE / "_native.py").read_text(encoding="utf-8")
        self.assertEqual(native.count("describe.argtypes = []"), 1)

    def test_every_described_function_is_bound(self):
        doc = spotdb.description
        described = list(doc["functions"])
        for rel in doc["relations"]:
            described += rel["functions"].values()
        self.assertGreater(len(described), 60)
        for f in described:
            fn = spotdb.native.functions[f["name"]]
            self.assertEqual(len(fn.argtypes), len(f["params"]), f["name"])
            self.assertEqual(fn.restype is None, f["returns"] == "void")

    def test_relations_have_their_methods(self):
        for name in ("users", "accounts", "instances", "model_registry",
                     "experiment_logs"):
            cls = spotdb.relation_classes[name]
            for op in ("create", "get", "update", "delete", "list", "count"):
                self.assertTrue(callable(getattr(cls, op)), (name, op))
        for name in ("v_active_instances", "v_recent_experiments"):
            self.assertTrue(callable(spotdb.relation_classes[name].list))
            self.assertFalse(hasattr(spotdb.relation_classes[name], "create"))
        users = spotdb.relation_classes["users"]
        self.assertIn("spotdb_user_authenticate", users.authenticate.__doc__)
        self.assertTrue(issubclass(spotdb.NotFound, LookupError))
        self.assertTrue(issubclass(spotdb.InvalidArgument, ValueError))
        self.assertEqual(spotdb.Conflict.code, -7)

    def test_timestamps_convert(self):
        dt = datetime.datetime(2024, 2, 29, 12, 30, 1, 123456,
                               tzinfo=spotdb.UTC)
        us = spotdb.us_from_datetime(dt)
        self.assertEqual(us, 1709209801123456)
        self.assertEqual(spotdb.datetime_from_us(us), dt)
        self.assertEqual(spotdb.us_from_datetime(dt.replace(tzinfo=None)), us)


# ---- opening and migrating ------------------------------------------------


class MigrateTest(unittest.TestCase):

    def setUp(self):
        self.fresh = Fresh()
        self.addCleanup(self.fresh.drop)

    def test_migrate_and_status(self):
        # An empty database is refused by the schema check...
        e = None
        with self.assertRaises(spotdb.SchemaMismatch) as cm:
            spotdb.open(self.fresh.url)
        e = cm.exception
        self.assertEqual(e.code, -10)
        self.assertIn("migrate", e.message)
        # ...and migrated through a handle that skips it.
        with spotdb.open(self.fresh.url, check_schema=False,
                         application_name="spotdb-python-test") as db:
            before = db.status()
            self.assertEqual(before.current_version, 0)
            self.assertEqual(before.tracked, 0)
            self.assertEqual(before.latest_version, spotdb.schema_version)
            self.assertEqual(len(before.pending), spotdb.schema_version)
            self.assertEqual(before.pending[0].name, "initial")
            db.migrate(target_version=1)
            self.assertEqual(db.status().current_version, 1)
            db.migrate()
            after = db.status()
        self.assertEqual(after.current_version, spotdb.schema_version)
        self.assertEqual(after.pending, [])
        self.assertEqual([m.version for m in after.applied],
                         list(range(1, spotdb.schema_version + 1)))
        self.assertTrue(all(m.applied_at_us > 0 for m in after.applied))
        self.assertEqual(len(after.applied[0].checksum), 64)
        self.assertEqual(self.fresh.sql(
            "SELECT max(version) FROM spotdb_schema_migrations"),
            str(spotdb.schema_version))
        with spotdb.open(self.fresh.url) as db:
            self.assertEqual(db.users.count(), 1)      # the seeded admin

    def test_open_failure_carries_code_and_message(self):
        url = ("postgresql://someone:Sup3rSecretPw@/nodb?host=/nonexistent-"
               "spotdb-dir&connect_timeout=2")
        e = None
        with self.assertRaises(spotdb.ConnectionFailed) as cm:
            spotdb.open(url)
        e = cm.exception
        self.assertEqual(e.code, -4)
        self.assertEqual(e.name, "SPOTDB_ECONN")
        self.assertIn("nonexistent-spotdb-dir", e.message)
        self.assertNotIn("Sup3rSecretPw", str(e))
        with self.assertRaises(TypeError):
            spotdb.open(self.fresh.url, no_such_option=1)


# ---- rows -------------------------------------------------------------------


class UserTest(DatabaseTest):

    def test_create_get_update_delete_authenticate(self):
        users = self.db.users
        u = users.create(email="zoë@exämple.com", username="zoë_ü",
                         full_name=None, password="pässwörd-1")
        self.assertIsInstance(u, spotdb.User)
        self.assertEqual(len(u.id), 36)
        self.assertEqual(u.email, "zoë@exämple.com")
        self.assertIsNone(u.full_name)
        self.assertIsNone(u.last_login)
        self.assertEqual(u.role, "user")             # the server's default
        self.assertIs(u.is_active, True)
        self.assertEqual(users.get(u.id), u)
        self.assertEqual(users.get_by_email("zoë@exämple.com"), u)
        self.assertEqual(users.get_by_username(username="zoë_ü"), u)
        # The password is stored as a bcrypt hash of cost 12, never as is.
        stored = self.sql("SELECT hashed_password FROM users WHERE id = '%s'"
                          % u.id)
        self.assertTrue(stored.startswith("$2b$12$"), stored[:7])
        self.assertNotIn("pässwörd-1", stored)

        v = users.update(u.id, full_name=NON_ASCII, role="lab")
        self.assertEqual(v.full_name, NON_ASCII)
        self.assertEqual(v.role, "lab")
        self.assertGreaterEqual(v.updated_at, u.updated_at)
        self.assertEqual(self.sql("SELECT full_name FROM users WHERE id = "
                                  "'%s'" % u.id), NON_ASCII)
        self.assertIsNone(users.update(u.id, full_name=None).full_name)

        # Right password: the user, with last_login set by the server.
        ok = users.authenticate("zoë_ü", "pässwörd-1")
        self.assertEqual(ok.id, u.id)
        self.assertIsNotNone(ok.last_login)
        self.assertGreaterEqual(ok.last_login, ok.created_at)
        # Wrong password: the code and the library's message.
        self.assertFails(spotdb.AuthenticationFailed, -9, "authentication "
                         "failed", users.authenticate, "zoë@exämple.com",
                         "wrong-password")

        users.delete(u.id)
        self.assertFails(spotdb.NotFound, -6, None, users.get, u.id)
        self.assertEqual(self.sql("SELECT count(*) FROM users WHERE id = "
                                  "'%s'" % u.id), "0")

    def test_duplicate_email_is_a_conflict(self):
        admin = self.admin()
        e = self.assertFails(spotdb.Conflict, -7, "users_email_key",
                             self.db.users.create, email=admin.email,
                             username="someone_else", password="another-pw")
        self.assertEqual(e.name, "SPOTDB_ECONFLICT")
        self.assertEqual(e.sqlstate, "23505")
        self.assertIn("SPOTDB_ECONFLICT", str(e))
        self.assertNotIn("another-pw", str(e))

    def test_invalid_values_are_refused_before_the_server(self):
        users = self.db.users
        self.assertFails(spotdb.InvalidArgument, -2, "user.email",
                         users.create, email="no-at-sign", username="x",
                         password="pw-123456")
        self.assertFails(spotdb.InvalidArgument, -2, "user.role",
                         users.update, self.admin().id, role="king")
        self.assertFails(spotdb.InvalidArgument, -2, None, users.get,
                         "not-a-uuid")
        with self.assertRaises(TypeError):
            users.update(self.admin().id, no_such_column=1)
        with self.assertRaises(TypeError):
            users.update(self.admin().id, is_active="yes")
        self.assertEqual(self.sql("SELECT count(*) FROM users"), "1")

    def test_seeded_admin_authenticates(self):
        admin = self.db.users.authenticate("admin", "admin")
        self.assertEqual(admin.username, "admin")
        self.assertEqual(admin.role, "admin")


class AccountInstanceTest(DatabaseTest):

    def test_account_round_trip_with_nulls(self):
        accounts = self.db.accounts
        a = self.account(account_name=NON_ASCII, is_active=None)
        self.assertIsInstance(a, spotdb.Account)
        self.assertEqual(a.user_id, self.admin().id)
        self.assertEqual(a.account_name, NON_ASCII)
        self.assertIsNone(a.is_active)                 # nullable, written NULL
        self.assertEqual(a.environment_type, "LAB")
        self.assertEqual(a.region, "ap-south-1")
        self.assertEqual(self.sql("SELECT is_active IS NULL FROM accounts"),
                         "t")
        self.assertEqual(accounts.get_by_account_id("123456789012"), a)
        b = accounts.update(a.id, environment_type="PROD", is_active=True)
        self.assertEqual((b.environment_type, b.is_active), ("PROD", True))
        self.assertEqual(accounts.list(user_id=a.user_id), [b])
        self.assertEqual(accounts.count(environment_type="LAB"), 0)
        self.assertEqual(accounts.count(environment_type="PROD"), 1)
        self.assertFails(spotdb.InvalidArgument, -2, "account.account_id",
                         accounts.create, user_id=a.user_id,
                         account_id="123", account_name="x",
                         role_arn=ARN % "123", external_id="ext-1")
        self.assertFails(spotdb.Conflict, -7, None, self.account)
        accounts.delete(a.id)
        self.assertFails(spotdb.NotFound, -6, None, accounts.delete, a.id)

    def test_instance_round_trip(self):
        instances = self.db.instances
        a = self.account()
        evaluated = datetime.datetime(2024, 5, 1, 8, 0, 0, 250000,
                                      tzinfo=spotdb.UTC)
        i = self.instance(a, metadata={"note": NON_ASCII, "n": 3},
                          last_evaluation=evaluated,
                          assigned_model_version=None)
        self.assertIsInstance(i, spotdb.Instance)
        self.assertEqual(i.account_id, a.id)
        self.assertEqual(i.pipeline_mode, "CLUSTER")
        self.assertIsNone(i.assigned_model_version)
        self.assertEqual(i.last_evaluation, spotdb.us_from_datetime(evaluated))
        self.assertEqual(self.sql("SELECT metadata->>'note' FROM instances"),
                         NON_ASCII)
        self.assertEqual(self.sql("SELECT last_evaluation FROM instances"),
                         "2024-05-01 08:00:00.25")
        self.assertEqual(instances.get_by_instance_id(i.instance_id), i)
        j = instances.update(i.id, metadata=None, pipeline_mode="LINEAR",
                             is_shadow_mode=True)
        self.assertIsNone(j.metadata)
        self.assertEqual((j.pipeline_mode, j.is_shadow_mode),
                         ("LINEAR", True))
        k = instances.create_for_aws_account(
            "123456789012", instance_id="i-0fedcba9876543210",
            instance_type="m5.xlarge", availability_zone="ap-south-1b")
        self.assertEqual(k.account_id, a.id)
        self.assertEqual(instances.count(account_id=a.id), 2)
        linear = instances.list(pipeline_mode="LINEAR")
        self.assertEqual([r.id for r in linear], [i.id])
        self.assertFails(spotdb.NotFound, -6, "999999999999",
                         instances.create_for_aws_account, "999999999999",
                         instance_id="i-0aaaaaaaaaaaaaaaa",
                         instance_type="t3.micro",
                         availability_zone="ap-south-1a")
        self.assertFails(spotdb.ReferenceViolation, -8, None,
                         instances.create, account_id=self.admin().id,
                         instance_id="i-0aaaaaaaaaaaaaaaa",
                         instance_type="t3.micro",
                         availability_zone="ap-south-1a")
        instances.delete(k.id)
        self.assertFails(spotdb.NotFound, -6, None, instances.get, k.id)


class ModelLogTest(DatabaseTest):

    def test_model_round_trip(self):
        models = self.db.model_registry
        m = models.create(name="FamilyStressPredictor", version="v2.1.0",
                          description=NON_ASCII, created_by=None,
                          s3_path=None)
        self.assertIsInstance(m, spotdb.Model)
        self.assertIsNone(m.created_by)
        self.assertIsNone(m.s3_path)
        self.assertEqual(m.description, NON_ASCII)
        self.assertIs(m.is_active, True)
        self.assertEqual(models.get_by_name_version("FamilyStressPredictor",
                                                    "v2.1.0"), m)
        n = models.update(m.id, is_active=False, created_by=self.admin().id)
        self.assertEqual(n.created_by, self.admin().id)
        self.assertEqual(models.list(is_active=False), [n])
        self.assertEqual(models.list(name="nothing"), [])
        models.delete(m.id)
        self.assertEqual(models.count(), 0)

    def test_experiment_log_round_trip(self):
        logs = self.db.experiment_logs
        inst = self.instance(self.account())
        at = datetime.datetime(2024, 6, 1, tzinfo=spotdb.UTC)
        e = logs.create(instance_id=inst.id, model_id=None, decision="SWITCH",
                        prediction_score=0.25, execution_time=at,
                        features_used=[1, "ü"], decision_reason=NON_ASCII,
                        execution_duration_ms=120)
        self.assertIsInstance(e, spotdb.ExperimentLog)
        self.assertIsNone(e.model_id)
        self.assertIsNone(e.old_spot_price)
        self.assertEqual(e.prediction_score, 0.25)
        self.assertEqual(e.execution_duration_ms, 120)
        self.assertEqual(e.decision_reason, NON_ASCII)
        self.assertEqual(self.sql("SELECT features_used->>1 FROM "
                                  "experiment_logs"), "ü")
        self.assertEqual(logs.get(e.id), e)
        f = logs.update(e.id, decision="STAY", prediction_score=None)
        self.assertEqual(f.decision, "STAY")
        self.assertIsNone(f.prediction_score)
        self.assertEqual(logs.count(decision="STAY", executed_from=at), 1)
        self.assertEqual(logs.count(executed_before=at), 0)
        self.assertFails(spotdb.InvalidArgument, -2, "prediction_score",
                         logs.update, e.id, prediction_score=1.5)
        with self.assertRaises(OverflowError):
            logs.update(e.id, execution_duration_ms=2 ** 31)
        logs.delete(e.id)
        self.assertEqual(logs.count(), 0)

    def test_list_pages_with_a_cursor(self):
        logs = self.db.experiment_logs
        inst = self.instance(self.account())
        base = spotdb.us_from_datetime(datetime.datetime(2024, 1, 1))
        ids = logs.insert_many([
            {"instance_id": inst.id, "execution_time": base + k * 1000,
             "decision": "STAY" if k % 3 else "SWITCH"} for k in range(7)])
        self.assertEqual(len(set(ids)), 7)
        pages, cursor = [], None
        while True:
            page = logs.list(cursor=cursor, limit=3)
            pages.append(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        self.assertEqual([len(p) for p in pages], [3, 3, 1])
        seen = [r.id for p in pages for r in p]
        self.assertEqual(seen, list(reversed(ids)))     # newest first
        times = [r.execution_time for p in pages for r in p]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertEqual([r.id for r in logs.iterate(page_size=2)], seen)
        switches = list(logs.iterate(page_size=2, decision="SWITCH"))
        self.assertEqual(len(switches), 3)
        self.assertFails(spotdb.InvalidArgument, -2, None, logs.list,
                         cursor="not a cursor")
        e = self.assertFails(spotdb.ReferenceViolation, -8, None,
                             logs.insert_many,
                             [{"instance_id": inst.id},
                              {"instance_id": self.admin().id}])
        self.assertIn(e.bad_row, (1, -1))
        self.assertEqual(logs.count(), 7)


class ViewTest(DatabaseTest):

    def test_active_instances(self):
        lab = self.account("111111111111")
        prod = self.account("222222222222", environment_type="PROD")
        self.db.model_registry.create(name="Model ü", version="v1")
        early = datetime.datetime(2024, 1, 1, tzinfo=spotdb.UTC)
        late = datetime.datetime(2024, 2, 1, tzinfo=spotdb.UTC)
        a = self.instance(lab, "i-0aaaaaaaaaaaaaaa1", last_evaluation=early,
                          assigned_model_version="v1")
        b = self.instance(prod, "i-0aaaaaaaaaaaaaaa2", last_evaluation=late)
        self.instance(lab, "i-0aaaaaaaaaaaaaaa3", is_active=False)
        rows = self.db.v_active_instances.list()
        self.assertEqual([r.id for r in rows], [b.id, a.id])
        self.assertIsInstance(rows[0], spotdb.ActiveInstance)
        self.assertIsNone(rows[0].model_name)
        self.assertEqual(rows[1].model_name, "Model ü")
        self.assertEqual(rows[1].username, "admin")
        self.assertIsNone(rows.next_cursor)
        lab_rows = self.db.v_active_instances.list(environment_type="LAB")
        self.assertEqual([r.instance_id for r in lab_rows],
                         ["i-0aaaaaaaaaaaaaaa1"])
        self.assertEqual(len(self.db.v_active_instances.list(limit=1)), 1)
        self.db.accounts.update(prod.id, is_active=False)
        self.assertEqual([r.id for r in self.db.v_active_instances.list()],
                         [a.id])

    def test_recent_experiments_and_report(self):
        inst = self.instance(self.account())
        model = self.db.model_registry.create(name="M", version="v9")
        now = spotdb.us_from_datetime(datetime.datetime.now(spotdb.UTC))
        rows = [
            {"instance_id": inst.id, "model_id": model.id,
             "decision": "SWITCH", "is_shadow_run": False,
             "execution_time": now - 3000, "projected_hourly_savings": 0.5},
            {"instance_id": inst.id, "model_id": model.id,
             "decision": "SWITCH", "is_shadow_run": True,
             "execution_time": now - 2000, "projected_hourly_savings": 1.5},
            {"instance_id": inst.id, "model_id": model.id,
             "decision": "STAY", "is_shadow_run": False,
             "execution_time": now - 1000, "projected_hourly_savings": None},
        ]
        ids = self.db.experiment_logs.insert_many(rows)
        recent = self.db.v_recent_experiments
        got = recent.list()
        self.assertEqual([r.id for r in got], list(reversed(ids)))
        self.assertIsInstance(got[0], spotdb.RecentExperiment)
        self.assertEqual(got[0].model_name, "M")
        self.assertIsNone(got[0].projected_hourly_savings)
        real = recent.list(decision="SWITCH", is_shadow_run=False, limit=10)
        self.assertEqual([r.id for r in real], [ids[0]])
        self.assertEqual(len(recent.list(limit=2)), 2)

        report = self.db.model_performance.list()
        self.assertEqual(len(report), 1)
        self.assertIsInstance(report[0], spotdb.ModelPerformance)
        self.assertEqual((report[0].model_name, report[0].runs,
                          report[0].switch_count), ("M", 3, 2))
        self.assertAlmostEqual(report[0].avg_projected_savings, 1.0)
        window = self.db.model_performance.list(since=now - 2500,
                                                until=now - 1500)
        self.assertEqual(window[0].runs, 1)
        self.assertEqual(self.db.model_performance.list(until=now - 5000),
                         [])


class HandleTest(DatabaseTest):

    def test_transactions(self):
        models = self.db.model_registry
        with self.assertRaises(RuntimeError):
            with self.db.transaction():
                models.create(name="rolled", version="v1")
                raise RuntimeError("stop")
        self.assertEqual(models.count(), 0)
        with self.db.transaction():
            models.create(name="kept", version="v1")
        self.assertEqual(self.sql("SELECT name FROM model_registry"), "kept")

    def test_acting_for_a_user(self):
        """spotdb_set_scope through the binding: refused on the superuser
        the suite runs as, enforced on a member of spotdb_app."""
        admin = self.db.users.get_by_username("admin")
        self.assertIsNone(self.db.scope)
        self.assertFails(spotdb.InvalidArgument, -2, "BYPASSRLS",
                         self.db.set_scope, admin.id)
        self.assertFails(spotdb.InvalidArgument, -2, "user_id",
                         self.db.set_scope, "not-a-uuid")
        self.sql("DO $$ BEGIN CREATE ROLE spotdb_py_app LOGIN IN ROLE "
                 "spotdb_app; EXCEPTION WHEN duplicate_object OR "
                 "unique_violation THEN NULL; END $$")
        url = self.fresh.url
        if url.startswith(("postgresql://", "postgres://")):
            parts = urllib.parse.urlsplit(url)
            url = urllib.parse.urlunsplit(parts._replace(
                netloc="spotdb_py_app@" + parts.netloc.split("@")[-1]))
        else:
            url += " user=spotdb_py_app"
        with spotdb.open(url) as app:
            self.assertEqual(app.users.count(), 0)
            app.set_scope(admin.id)
            self.assertEqual(app.scope, str(admin.id))
            self.assertEqual(app.users.count(), 1)
            app.set_scope(None)
            self.assertIsNone(app.scope)
            self.assertEqual(app.users.count(), 0)

    def test_what_the_library_returns_is_freed(self):
        """Every row and page is handed back to its free function, on
        success and failure alike."""
        native = spotdb.native
        names = ("spotdb_model_free", "spotdb_model_rows_free")
        calls = {n: [] for n in names}
        originals = {n: native.functions[n] for n in names}

        def counting(name):
            def free(p):
                calls[name].append(bool(p))
                originals[name](p)
            return free
        for n in names:
            native.functions[n] = counting(n)
        try:
            models = self.db.model_registry
            m = models.create(name="x", version="v1")
            models.get(m.id)
            models.update(m.id, description="d")
            models.list()
            models.list(limit=1)
            with self.assertRaises(spotdb.NotFound):
                models.get("00000000-0000-0000-0000-000000000000")
        finally:
            native.functions.update(originals)
        self.assertEqual(calls["spotdb_model_free"], [True, True, True, False])
        self.assertEqual(calls["spotdb_model_rows_free"], [True, True])

    def test_datetimes_and_closing(self):
        with spotdb.open(self.fresh.url, datetimes=True) as db:
            admin = db.users.get_by_username("admin")
            self.assertIsInstance(admin.created_at, datetime.datetime)
            self.assertEqual(admin.created_at.tzinfo, spotdb.UTC)
        self.assertTrue(db.closed)
        db.close()                                     # idempotent
        with self.assertRaises(spotdb.InvalidArgument):
            db.users.count()

    def test_threads_share_a_handle_safely(self):
        errors = []

        def work():
            try:
                for _ in range(20):
                    self.assertEqual(self.db.users.count(), 1)
            except Exception as e:                     # pragma: no cover
                errors.append(e)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
