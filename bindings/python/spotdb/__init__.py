"""libspotdb for Python: the Spot Optimizer data-access library over
ctypes, with no compiler needed.

    import spotdb
    with spotdb.open("postgresql://...") as db:
        user = db.users.create(email="a@example.com", username="a",
                               password="s3cret!")
        for inst in db.v_active_instances.list(environment_type="LAB"):
            print(inst.instance_id, inst.model_name)

The library is loaded from $SPOTDB_LIBRARY (a path) when set, else by its
soname libspotdb.so.0.  Every struct, row class, relation method and
error class is built at import from spotdb_schema_describe(), the
library's description of itself: nothing here repeats a C layout.
"""

import dataclasses as _dataclasses
import sys as _sys

from . import _api, _native
from . import errors as _errors
from ._api import (UTC, Database, Page, Relation, datetime_from_us,
                   us_from_datetime)
from .errors import Error

#: The loaded library, its description and the ctypes types built from it.
native = _native.Native()
#: The parsed spotdb_schema_describe() document.
description = native.doc
#: Version of the loaded libspotdb ("0.1.0").
library_version = description["library"]["version"]
#: The newest schema migration the loaded library embeds.
schema_version = description["schema_version"]

#: {code: exception class}, one per described error code.
error_classes = _errors.build_classes(description["errors"])
#: {code: "SPOTDB_E..."}.
error_names = {e["code"]: e["name"] for e in description["errors"]}
for _cls in set(error_classes.values()):
    globals()[_cls.__name__] = _cls
InvalidArgument = globals()["InvalidArgument"]

#: {relation name: RelationSpec}, the row classes and C structs of each.
specs = {r["name"]: _api.RelationSpec(native, r, InvalidArgument)
         for r in description["relations"]}
#: {relation name: Relation subclass with a method per described call}.
relation_classes = {name: _api.relation_class(spec)
                    for name, spec in specs.items()}
for _spec in specs.values():
    globals()[_spec.row_class.__name__] = _spec.row_class


def _struct_class(name, c_struct, lists):
    members = native.described_struct(c_struct)["members"]
    counts = {m + "_count" for m in lists}
    fields = [(m["name"], object) for m in members
              if m["name"] not in counts]
    cls = _dataclasses.make_dataclass(name, fields, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = "%s, as described by the library." % c_struct
    return cls


def _lists_of(c_struct):
    """Pointer members with a sibling <name>_count: arrays."""
    names = {m["name"] for m in native.described_struct(c_struct)["members"]}
    return {n for n in names if n + "_count" in names}


_STATUS_LISTS = _lists_of("spotdb_status")
#: One migration (spotdb_migration_info).
Migration = _struct_class("Migration", "spotdb_migration_info", set())
#: The migration state of a database (spotdb_status).
Status = _struct_class("Status", "spotdb_status", _STATUS_LISTS)


def _plain(c, members, skip=()):
    out = {}
    for m in members:
        if m["name"] in skip:
            continue
        v = getattr(c, m["name"])
        out[m["name"]] = v.decode("utf-8") if isinstance(v, bytes) else v
    return out


def status_from_c(c):
    """A Status from a C spotdb_status."""
    info = native.described_struct("spotdb_migration_info")["members"]
    members = native.described_struct("spotdb_status")["members"]
    values = _plain(c, members, skip=_STATUS_LISTS |
                    {n + "_count" for n in _STATUS_LISTS})
    for name in _STATUS_LISTS:
        array, n = getattr(c, name), getattr(c, name + "_count")
        values[name] = [Migration(**_plain(array[i], info))
                        for i in range(n)]
    return Status(**values)


def open(conninfo=None, *, check_schema=True, datetimes=False, **options):
    """Connect (spotdb_open) and return a Database.

    conninfo: libpq settings or URI; None reads DATABASE_URL and the other
    variables the library documents.  check_schema=False opens a database
    whose schema is not at the library's version (to migrate it).
    datetimes=True gives timestamps as aware UTC datetimes instead of int
    microseconds.  Other keywords set members of spotdb_open_options by
    name (application_name, connect_timeout_s, statements, pooler, ...).
    """
    return Database(_sys.modules[__name__], conninfo,
                    check_schema=check_schema, datetimes=datetimes,
                    **options)


def describe():
    """The library's description as a dict (spotdb_schema_describe())."""
    return description


__all__ = ["open", "Database", "Relation", "Page", "Error", "Status",
           "Migration", "UTC", "datetime_from_us", "us_from_datetime",
           "describe", "library_version", "schema_version"] + \
    sorted({c.__name__ for c in error_classes.values()}) + \
    sorted(s.row_class.__name__ for s in specs.values())
