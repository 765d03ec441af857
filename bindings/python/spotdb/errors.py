"""Exceptions: one class per libspotdb error code, made from the codes the
library describes, all under spotdb.Error."""


class Error(Exception):
    """A libspotdb call failed.

    Attributes: ``code`` (the negative SPOTDB_E* value), ``name``
    ("SPOTDB_ECONFLICT"), ``message`` (the library's detail, from
    spotdb_errmsg() or spotdb_last_errmsg(); never contains a password),
    ``sqlstate`` (the server's SQLSTATE, or "").
    """

    code = -1
    name = "SPOTDB_ERROR"

    def __init__(self, message, code=None, name=None, sqlstate=""):
        super().__init__(message)
        if code is not None:
            self.code = code
        if name is not None:
            self.name = name
        self.message = message
        self.sqlstate = sqlstate

    def __str__(self):
        return "%s (%d): %s" % (self.name, self.code, self.message)


# Python names for the codes of spotdb/errors.h, with a builtin exception
# to inherit from where one fits.  A code this table does not know still
# gets a class, named after its C name.
_NAMES = {
    "SPOTDB_EINVAL": ("InvalidArgument", ValueError),
    "SPOTDB_ENOMEM": ("OutOfMemory", None),
    "SPOTDB_ECONN": ("ConnectionFailed", None),
    "SPOTDB_ESQL": ("StatementRejected", None),
    "SPOTDB_ENOTFOUND": ("NotFound", LookupError),
    "SPOTDB_ECONFLICT": ("Conflict", None),
    "SPOTDB_EREFERENCE": ("ReferenceViolation", None),
    "SPOTDB_EAUTH": ("AuthenticationFailed", None),
    "SPOTDB_ESCHEMA": ("SchemaMismatch", None),
    "SPOTDB_ECHECKSUM": ("ChecksumMismatch", None),
    "SPOTDB_EMIGRATE": ("MigrationFailed", None),
    "SPOTDB_EADOPT": ("AdoptionRefused", None),
    "SPOTDB_ELOCKED": ("Locked", None),
    "SPOTDB_EPOOLER": ("PoolerRefused", None),
    "SPOTDB_ETIMEOUT": ("Timeout", None),
    "SPOTDB_ECANCELED": ("Cancelled", None),
    "SPOTDB_EUNKNOWN": ("OutcomeUnknown", None),
    "SPOTDB_ESERIALIZATION": ("SerializationFailure", None),
    "SPOTDB_EDENIED": ("Denied", None),
}


def _class_name(c_name):
    known = _NAMES.get(c_name)
    if known:
        return known
    short = c_name[len("SPOTDB_"):] if c_name.startswith("SPOTDB_") else c_name
    return ("".join(p.title() for p in short.split("_")) + "Error", None)


def build_classes(described):
    """{code: class} for the `errors` of the library's description, the
    generic SPOTDB_ERROR being Error itself."""
    classes = {}
    for e in described:
        if e["code"] == 0:
            continue
        if e["name"] == "SPOTDB_ERROR":
            classes[e["code"]] = Error
            continue
        name, builtin = _class_name(e["name"])
        bases = (Error, builtin) if builtin else (Error,)
        classes[e["code"]] = type(name, bases, {
            "code": e["code"], "name": e["name"],
            "__doc__": "%s: %s." % (e["name"], e["message"]),
            "__module__": "spotdb",
        })
    return classes
