"""The Python side: database handles, one accessor per relation with a
method per described function, and the conversions between Python values
and the C structs.

Which methods a relation has, their parameters, the row classes and their
fields all follow from the library's description (see _native.py).
"""

import ctypes
import dataclasses
import datetime
import json
import threading
import uuid

from . import errors as _errors

UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
_INT_RANGE = {
    "int32_t": (-2 ** 31, 2 ** 31 - 1),
    "int64_t": (-2 ** 63, 2 ** 63 - 1),
}
INFINITY_US = 2 ** 63 - 1
MINUS_INFINITY_US = -2 ** 63

# Parameters every call of a kind has; the others are text arguments.
_HANDLE, _OUT, _IN, _FIELDS = "db", "out", "in", "fields"
_FILTER, _CURSOR, _LIMIT = "filter", "cursor", "limit"
_MANY = ("rows", "n", "ids", "bad_row")
_STRUCTURAL = {_HANDLE, _OUT, _IN, _FIELDS, _FILTER, _CURSOR, _LIMIT} \
    | set(_MANY)
# Functions with callbacks are left to C; lists page instead.
_SKIPPED_OPS = {"free", "rows_free", "stream"}


def datetime_from_us(us):
    """An aware UTC datetime from microseconds since 1970 (the library's
    timestamps); 'infinity' and '-infinity' become datetime.max and
    datetime.min."""
    if us >= INFINITY_US:
        return datetime.datetime.max.replace(tzinfo=UTC)
    if us <= MINUS_INFINITY_US:
        return datetime.datetime.min.replace(tzinfo=UTC)
    return _EPOCH + datetime.timedelta(microseconds=us)


def us_from_datetime(dt):
    """Microseconds since 1970 UTC; a naive datetime is taken as UTC, as
    the library's sessions are."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    d = dt - _EPOCH
    return (d.days * 86400 + d.seconds) * 10 ** 6 + d.microseconds


class Page(list):
    """The rows of one list call, with the cursor of the next page (None
    after the last one, and always for views and reports)."""

    def __init__(self, items, next_cursor=None):
        super().__init__(items)
        self.next_cursor = next_cursor


@dataclasses.dataclass
class Column:
    """A column as the description gives it, with how to convert it."""
    name: str
    bit: int
    c_type: str
    kind: str            # "uuid", "text", "bool", "int", "float"
    timestamp: bool
    json: bool
    spec: dict


def _column(c):
    t = c["c_type"]
    if t.startswith("char["):
        kind = "uuid"
    elif t == "const char *":
        kind = "text"
    elif t == "bool":
        kind = "bool"
    elif t in _INT_RANGE:
        kind = "int"
    elif t == "double":
        kind = "float"
    else:
        raise ImportError("column %s: C type %r is unknown to this binding"
                          % (c["name"], t))
    return Column(c["name"], c["bit"], t, kind, c["timestamp"], c["json"], c)


def _class_name(entity):
    return "".join(p.title() for p in entity.split("_"))


class RelationSpec:
    """What the binding knows of one relation, all from the description:
    the C structs, the Python row class, the columns and filter members,
    and the described functions."""

    def __init__(self, native, described, invalid_class):
        self.native = native
        self.described = described
        self.name = described["name"]
        self.entity = described["entity"]
        self.kind = described["kind"]
        self.columns = [_column(c) for c in described["columns"]]
        self.by_name = {c.name: c for c in self.columns}
        self.struct = native.struct(described["c_struct"])
        self.filter = described["filter"]
        self.filter_struct = native.struct(self.filter["c_struct"])
        self.filter_members = {m["name"]: m for m in self.filter["members"]
                               if m["name"] != "version"}
        self.rows_struct = native.struct(described["rows"]["c_struct"])
        self.functions = described["functions"]
        self.invalid_class = invalid_class
        self.row_class = dataclasses.make_dataclass(
            _class_name(self.entity),
            [(c.name, object) for c in self.columns],
            frozen=True, namespace={
                "__doc__": "A row of %s (%s %s); None is SQL NULL." % (
                    self.name, self.kind, described["c_struct"]),
                "relation": self.name})
        self.row_class.__module__ = "spotdb"

    def c_function(self, op):
        return getattr(self.native, self.functions[op]["name"])

    def invalid(self, message):
        cls = self.invalid_class
        return cls(message, code=cls.code, name=cls.name)

    # ---- Python -> C ----------------------------------------------------

    def to_struct(self, values, keep, struct=None):
        """A C row from {column: value}, and its `fields` mask."""
        s = struct if struct is not None else self.struct()
        fields = nulls = 0
        for name, v in values.items():
            col = self.by_name.get(name)
            if col is None:
                raise TypeError("%s has no column %r" % (self.entity, name))
            fields |= col.bit
            if v is None:
                nulls |= col.bit
            else:
                setattr(s, name, self.to_c(col, v, keep))
        s.nulls = nulls
        return s, fields

    def to_c(self, col, v, keep):
        where = "%s.%s" % (self.entity, col.name)
        if col.kind == "uuid":
            b = str(v).encode("utf-8")
            if len(b) >= col.spec["size"]:
                raise self.invalid("%s: is not a UUID" % where)
            return b
        if col.kind == "text":
            if col.json and not isinstance(v, (str, bytes)):
                v = json.dumps(v)
            b = encode_text(v, where)
            if b"\0" in b:
                raise self.invalid("%s: contains a NUL character" % where)
            keep.append(b)
            return b
        if col.kind == "bool":
            if not isinstance(v, bool):
                raise TypeError("%s: expected a bool, got %s" %
                                (where, type(v).__name__))
            return v
        if col.kind == "int":
            if col.timestamp and isinstance(v, datetime.datetime):
                v = us_from_datetime(v)
            return check_int(v, col.c_type, where)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError("%s: expected a number, got %s" %
                            (where, type(v).__name__))
        return float(v)

    def to_filter(self, filters, keep):
        """A C filter struct from {member: value}; None does not filter."""
        f = self.filter_struct()
        f.version = self.filter["version"]
        for name, v in filters.items():
            m = self.filter_members.get(name)
            if m is None:
                raise TypeError("%s cannot be filtered by %r (filters: %s)" %
                                (self.name, name,
                                 ", ".join(self.filter_members) or "none"))
            if v is None:
                continue
            ctype = self.native.types.resolve(m["c_type"])
            where = "%s filter %s" % (self.name, name)
            if ctype is ctypes.c_char_p:
                b = encode_text(str(v) if isinstance(v, uuid.UUID) else v,
                                where)
                keep.append(b)
                setattr(f, name, b)
                continue
            target = ctype._type_
            if target is ctypes.c_bool:
                if not isinstance(v, bool):
                    raise TypeError("%s: expected a bool" % where)
                value = target(v)
            elif m.get("timestamp") and isinstance(v, datetime.datetime):
                value = target(us_from_datetime(v))
            elif target is ctypes.c_double:
                value = target(float(v))
            else:
                c_type = "int32_t" if ctypes.sizeof(target) == 4 else "int64_t"
                value = target(check_int(v, c_type, where))
            keep.append(value)
            setattr(f, name, ctypes.pointer(value))
        return f

    # ---- C -> Python ----------------------------------------------------

    def to_row(self, c, datetimes=False):
        nulls = c.nulls
        values = []
        for col in self.columns:
            if nulls & col.bit:
                values.append(None)
                continue
            v = getattr(c, col.name)
            if col.kind == "uuid":
                v = v.decode("ascii")
            elif col.kind == "text":
                v = None if v is None else v.decode("utf-8")
            elif col.timestamp and datetimes:
                v = datetime_from_us(v)
            values.append(v)
        return self.row_class(*values)


#: Stands for the handle in argument lists until the lock is held.
HANDLE = object()


def encode_text(v, where):
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise TypeError("%s: expected a str, got %s" % (where, type(v).__name__))


def check_int(v, c_type, where):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s: expected an int, got %s" %
                        (where, type(v).__name__))
    lo, hi = _INT_RANGE[c_type]
    if not lo <= v <= hi:
        raise OverflowError("%s: %d does not fit in %s" % (where, v, c_type))
    return v


def text_arg(v, where):
    """A text argument of a call (id, email, password...): None is NULL."""
    if v is None:
        return None
    if isinstance(v, uuid.UUID):
        v = str(v)
    return encode_text(v, where)


# ---- relations ----------------------------------------------------------


class Relation:
    """One table, view or report of an open Database.  Its methods are
    made from the functions the library describes for it; see
    help(db.<relation>)."""

    def __init__(self, db, spec):
        self._db = db
        self.spec = spec

    @property
    def name(self):
        return self.spec.name

    @property
    def row_class(self):
        return self.spec.row_class

    def __repr__(self):
        return "<spotdb %s %s>" % (self.spec.kind, self.spec.name)

    def _run(self, op, texts, values):
        """Call the described function `op` of this relation: `texts` are
        its text arguments by name, `values` the columns (calls with a row
        in) or the filter members and cursor/limit (lists and counts)."""
        spec = self.spec
        f = spec.functions[op]
        fn = spec.c_function(op)
        keep, args, out, out_kind = [], [], None, None
        names = {p["name"] for p in f["params"]}
        values = dict(values)
        cursor = values.pop(_CURSOR, None) if _CURSOR in names else None
        limit = values.pop(_LIMIT, 0) if _LIMIT in names else 0
        has_in, has_filter = _IN in names, _FILTER in names
        if values and not (has_in or has_filter):
            raise TypeError("%s.%s() takes no keyword arguments %s" %
                            (spec.name, op, sorted(values)))
        row = fields = None
        if has_in:
            row, fields = spec.to_struct(values, keep)
        for p in f["params"]:
            name, c_type = p["name"], p["c_type"]
            if name == _HANDLE:
                args.append(HANDLE)         # filled in under the lock
            elif name == _OUT:
                if c_type == "int64_t *":
                    out, out_kind = ctypes.c_int64(0), "count"
                elif c_type.endswith("_rows **"):
                    out, out_kind = ctypes.POINTER(spec.rows_struct)(), "rows"
                else:
                    out, out_kind = ctypes.POINTER(spec.struct)(), "row"
                args.append(ctypes.byref(out))
            elif name == _IN:
                args.append(ctypes.byref(row))
            elif name == _FIELDS:
                args.append(fields)
            elif name == _FILTER:
                args.append(ctypes.byref(spec.to_filter(values, keep)))
            elif name == _CURSOR:
                args.append(text_arg(cursor, "cursor"))
            elif name == _LIMIT:
                args.append(check_int(limit, "int32_t", "limit"))
            else:
                args.append(text_arg(texts[name], name))
        return self._db._call(fn, args, lambda: self._result(out, out_kind))

    def _result(self, out, kind):
        """Convert the out-parameter and free what the library returned."""
        spec, datetimes = self.spec, self._db.datetimes
        if kind == "count":
            return out.value
        if kind == "row":
            try:
                return spec.to_row(out.contents, datetimes) if out else None
            finally:
                spec.c_function("free")(out)
        if kind == "rows":
            try:
                if not out:
                    return Page([])
                page = out.contents
                items = [spec.to_row(page.items[i], datetimes)
                         for i in range(page.count)]
                cursor = page.next_cursor
                return Page(items, cursor.decode("ascii") if cursor else None)
            finally:
                spec.c_function("rows_free")(out)
        return None

    def iterate(self, page_size=0, **filters):
        """Every row the filters select, page after page (tables only)."""
        if not any(p["name"] == _CURSOR
                   for p in self.spec.functions["list"]["params"]):
            yield from self.list(**filters)
            return
        cursor = None
        while True:
            page = self.list(cursor=cursor, limit=page_size, **filters)
            yield from page
            cursor = page.next_cursor
            if cursor is None:
                return



def _insert_many(self, rows):
    """Store rows (dicts with the same keys) with one binary COPY and
    return their ids.  All or nothing: on failure the error's `bad_row` is
    the index of the offending row, or -1 when it cannot be known."""
    spec = self.spec
    rows = list(rows)
    keep = []
    array = (spec.struct * max(len(rows), 1))()
    fields = 0
    keys = set(rows[0]) if rows else set()
    for i, r in enumerate(rows):
        if set(r) != keys:
            raise TypeError("insert_many: row %d names other columns "
                            "than row 0" % i)
        _, fields = spec.to_struct(r, keep, array[i])
    f = spec.functions["insert_many"]
    params = {p["name"]: p["c_type"] for p in f["params"]}
    # ids: a pointer to n arrays of SPOTDB_UUID_SIZE chars.
    id_type = spec.native.types.resolve(params["ids"])._type_
    ids = (id_type * max(len(rows), 1))()
    bad = ctypes.c_int64(-1)
    given = {"db": HANDLE, "rows": array, "n": len(rows), "fields": fields,
             "ids": ids, "bad_row": ctypes.byref(bad)}
    try:
        self._db._call(spec.c_function("insert_many"),
                       [given[p["name"]] for p in f["params"]],
                       lambda: None)
    except _errors.Error as e:
        e.bad_row = bad.value
        raise
    return [ids[i].value.decode("ascii") for i in range(len(rows))]


def _method(spec, op, f):
    """A method calling the described function `op`: its text parameters
    are positional (or keywords by their C names); the rest of the
    keywords are columns (calls that take a row) or filter members,
    `cursor` and `limit` (lists and counts)."""
    texts = [p["name"] for p in f["params"]
             if p["name"] not in _STRUCTURAL and p["c_type"] == "const char *"]

    def method(self, *args, **kwargs):
        if len(args) > len(texts):
            raise TypeError("%s.%s() takes %d positional arguments (%s)" %
                            (spec.name, op, len(texts), ", ".join(texts)))
        given = dict(zip(texts, args))
        for name in texts[len(args):]:
            if name not in kwargs:
                raise TypeError("%s.%s() missing argument %r" %
                                (spec.name, op, name))
            given[name] = kwargs.pop(name)
        return self._run(op, given, kwargs)

    method.__name__ = op
    method.__qualname__ = "%s.%s" % (_class_name(spec.entity), op)
    method.__doc__ = "Calls %s.\n\nC: %s" % (f["name"], f["prototype"])
    return method


def relation_class(spec):
    """A Relation subclass with one method per described function."""
    methods = {op: _method(spec, op, f) for op, f in spec.functions.items()
               if op not in _SKIPPED_OPS and op != "insert_many"}
    if "insert_many" in spec.functions:
        methods["insert_many"] = _insert_many
    methods["__doc__"] = "The %s %s.  Rows are spotdb.%s." % (
        spec.kind, spec.name, spec.row_class.__name__)
    return type(_class_name(spec.entity) + "Relation", (Relation,), methods)


# ---- the handle ---------------------------------------------------------


class Database:
    """An open libspotdb handle (spotdb_open).  Use it as a context manager
    or call close().  Calls on one Database are serialised by a lock, as
    the library requires (one thread at a time per handle).

    The relations are attributes named as in SQL: db.users, db.accounts,
    db.instances, db.model_registry, db.experiment_logs,
    db.v_active_instances, db.v_recent_experiments, db.model_performance.
    """

    def __init__(self, module, conninfo=None, *, check_schema=True,
                 datetimes=False, **options):
        self._m = module
        self._handle = None
        self._lock = threading.Lock()
        self.datetimes = datetimes
        native = module.native
        opts_struct = native.struct("spotdb_open_options")
        described = native.described_struct("spotdb_open_options")
        opts = opts_struct()
        keep = []
        self._check_global(native.spotdb_open_options_init(
            ctypes.byref(opts), described["version"]))
        if not check_schema:
            options.setdefault("schema_check", 1)
        _set_options(opts, described, options, keep)
        handle = ctypes.c_void_p()
        rc = native.spotdb_open(ctypes.byref(handle),
                                text_arg(conninfo, "conninfo"),
                                ctypes.byref(opts))
        if rc != 0:
            raise self._error(rc, native.spotdb_last_errmsg(), b"")
        self._handle = handle
        for name, cls in module.relation_classes.items():
            setattr(self, name, cls(self, module.specs[name]))

    # ---- calls ----------------------------------------------------------

    def _error(self, rc, message, sqlstate):
        cls = self._m.error_classes.get(rc, _errors.Error)
        text = (message or b"").decode("utf-8", "replace")
        if not text:
            text = self._m.native.spotdb_strerror(rc).decode("utf-8")
        names = self._m.error_names
        return cls(text, code=rc, name=names.get(rc, "SPOTDB_ERROR"),
                   sqlstate=(sqlstate or b"").decode("ascii", "replace"))

    def _check_global(self, rc):
        if rc != 0:
            raise self._error(rc, self._m.native.spotdb_last_errmsg(), b"")

    def _call(self, fn, args, convert):
        """fn(handle, ...) under the handle's lock: raise the error with
        the handle's message, else return convert()'s result (which also
        frees what the call returned)."""
        native = self._m.native
        with self._lock:
            if self._handle is None:
                cls = self._m.InvalidArgument
                raise cls("the database is closed", code=cls.code,
                          name=cls.name)
            args = [self._handle if a is HANDLE else a for a in args]
            rc = fn(*args)
            try:
                if fn.restype is ctypes.c_int and rc != 0:
                    raise self._error(rc, native.spotdb_errmsg(self._handle),
                                      native.spotdb_sqlstate(self._handle))
            finally:
                result = convert()
            return result

    # ---- lifetime -------------------------------------------------------

    def close(self):
        """Close the connection (spotdb_close).  Idempotent."""
        with self._lock:
            if self._handle is not None:
                self._m.native.spotdb_close(self._handle)
                self._handle = None

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def relation(self, name):
        """The accessor of the relation `name` ("users", ...)."""
        if name not in self._m.specs:
            raise KeyError(name)
        return getattr(self, name)

    # ---- migrations -----------------------------------------------------

    def migrate(self, target_version=0, dry_run=False, lock_timeout_ms=0):
        """Apply the embedded migrations up to target_version (0: all)."""
        native = self._m.native
        described = native.described_struct("spotdb_migrate_options")
        opts = native.struct("spotdb_migrate_options")()
        self._check_global(native.spotdb_migrate_options_init(
            ctypes.byref(opts), described["version"]))
        _set_options(opts, described, {
            "target_version": target_version, "dry_run": int(dry_run),
            "lock_timeout_ms": lock_timeout_ms}, [])
        self._call(native.spotdb_migrate, [HANDLE, ctypes.byref(opts)],
                   lambda: None)

    def status(self):
        """The migration state (spotdb_status_get) as a spotdb.Status."""
        native = self._m.native
        out = ctypes.POINTER(native.struct("spotdb_status"))()

        def convert():
            try:
                return self._m.status_from_c(out.contents) if out else None
            finally:
                native.spotdb_status_free(out)
        return self._call(native.spotdb_status_get,
                          [ctypes.byref(out), HANDLE], convert)

    # ---- transactions ---------------------------------------------------

    def begin(self):
        self._call(self._m.native.spotdb_begin, [HANDLE], lambda: None)

    def commit(self):
        self._call(self._m.native.spotdb_commit, [HANDLE], lambda: None)

    def rollback(self):
        self._call(self._m.native.spotdb_rollback, [HANDLE], lambda: None)

    def transaction(self):
        """A context manager: begin, then commit, or roll back when the
        block raises."""
        return _Transaction(self)

    # ---- acting for a user (spotdb/scope.h) -----------------------------

    def set_scope(self, user_id):
        """Act as this user (a UUID, str or uuid.UUID) from now on, under
        the database's row-level security; None acts for nobody."""
        arg = None if user_id is None else encode_text(str(user_id),
                                                       "user_id")
        self._call(self._m.native.spotdb_set_scope, [HANDLE, arg],
                   lambda: None)

    @property
    def scope(self):
        """The acting user's id (str), or None."""
        with self._lock:
            if self._handle is None:
                return None
            v = self._m.native.spotdb_scope(self._handle)
        return v.decode("utf-8") if v is not None else None


class _Transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.begin()
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.db.commit()
        else:
            self.db.rollback()


def _set_options(opts, described, values, keep):
    """Set option struct members by name, as the description types them."""
    members = {m["name"]: m for m in described["members"]}
    for name, v in values.items():
        m = members.get(name)
        if m is None or name == "version":
            raise TypeError("%s has no option %r" % (described["name"], name))
        if m["c_type"] == "const char *":
            v = text_arg(v, name)
            keep.append(v)
        elif m["c_type"] in _INT_RANGE:
            v = check_int(v, m["c_type"], name)
        else:
            raise TypeError("option %r cannot be set from Python" % name)
        setattr(opts, name, v)
