"""The C side: load libspotdb, read its self-description, and build the
ctypes structures and function signatures from it.

Nothing here knows a struct layout or a prototype: every offset, size,
member and parameter comes from spotdb_schema_describe(), which the
library generates from the same column descriptions its C code runs on.
The one signature written by hand is spotdb_schema_describe() itself.
"""

import ctypes
import ctypes.util
import json
import os
import re

#: The document format this module understands (SPOTDB_SCHEMA_FORMAT).
FORMAT = 1

#: Environment variable naming the library file to load.
LIBRARY_ENV = "SPOTDB_LIBRARY"

#: The soname this binding is written against.
SONAME = "libspotdb.so.0"

_SCALARS = {
    "int": ctypes.c_int,
    "unsigned int": ctypes.c_uint,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "double": ctypes.c_double,
    "bool": ctypes.c_bool,
}

_ARRAY = re.compile(r"char\[(\d+)\]")
_ARRAY_POINTER = re.compile(r"char \(\*\)\[(\d+)\]")


class LayoutError(ImportError):
    """The description and the structs built from it disagree."""


def load_library(path=None):
    """The CDLL of libspotdb: `path`, else $SPOTDB_LIBRARY, else the
    soname, else whatever ctypes.util.find_library('spotdb') finds."""
    path = path or os.environ.get(LIBRARY_ENV)
    if path:
        return ctypes.CDLL(path)
    errors = []
    for name in (SONAME, ctypes.util.find_library("spotdb")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            errors.append(str(e))
    raise ImportError(
        "libspotdb not found: install it (meson install) or set %s to the "
        "path of libspotdb.so (%s)" % (LIBRARY_ENV, "; ".join(errors)))


def read_description(lib):
    """The parsed spotdb_schema_describe() document of `lib`."""
    describe = lib.spotdb_schema_describe
    describe.argtypes = []
    # A c_char_p result is copied into bytes; the library keeps its own.
    describe.restype = ctypes.c_char_p
    text = describe()
    if text is None:
        raise MemoryError("spotdb_schema_describe: out of memory")
    doc = json.loads(text.decode("utf-8"))
    if doc.get("format") != FORMAT:
        raise ImportError("libspotdb describes itself in format %r; this "
                          "binding reads format %d" % (doc.get("format"),
                                                       FORMAT))
    return doc


class Types:
    """ctypes types by C type name, filled as structs are built."""

    def __init__(self, opaque=("spotdb_db",)):
        self.structs = {}
        self.opaque = frozenset(opaque)

    def resolve(self, c_type):
        """The ctypes type of a C type string of the description."""
        t = " ".join(c_type.split())
        m = _ARRAY.fullmatch(t)
        if m:
            return ctypes.c_char * int(m.group(1))
        m = _ARRAY_POINTER.fullmatch(t)
        if m:
            return ctypes.POINTER(ctypes.c_char * int(m.group(1)))
        stars = len(t) - len(t.rstrip("*"))
        base = t.rstrip("*").strip()
        if base.startswith("const "):
            base = base[len("const "):]
        if stars == 0:
            if base in _SCALARS:
                return _SCALARS[base]
            if base.endswith(("_cb", "_fn")):
                # Callbacks: the binding passes NULL.
                return ctypes.c_void_p
            raise KeyError(base)
        if base == "char" and stars == 1:
            return ctypes.c_char_p
        if (base == "void" or base in self.opaque) and stars == 1:
            return ctypes.c_void_p          # opaque
        if base in self.opaque:
            inner, stars = ctypes.c_void_p, stars - 1
        elif base in self.structs:
            inner = self.structs[base]
        elif base in _SCALARS:
            inner = _SCALARS[base]
        else:
            raise KeyError(base)
        for _ in range(stars):
            inner = ctypes.POINTER(inner)
        return inner

    def struct(self, name, size, members):
        """A ctypes.Structure named `name` with `members` (dicts with name,
        c_type, offset, size) at their offsets, padded where needed, and
        checked member by member against the description."""
        fields, end, pads = [], 0, 0
        for m in sorted(members, key=lambda m: m["offset"]):
            t = self.resolve(m["c_type"])
            if ctypes.sizeof(t) != m["size"]:
                raise LayoutError("%s.%s: %s is %d bytes here, %d in the "
                                  "library" % (name, m["name"], m["c_type"],
                                               ctypes.sizeof(t), m["size"]))
            if m["offset"] > end:
                align = ctypes.alignment(t)
                natural = (end + align - 1) // align * align
                if natural != m["offset"]:
                    fields.append(("_pad%d" % pads,
                                   ctypes.c_ubyte * (m["offset"] - end)))
                    pads += 1
            fields.append((m["name"], t))
            end = m["offset"] + m["size"]
        cls = type(name, (ctypes.Structure,), {"_fields_": fields})
        if ctypes.sizeof(cls) < size:
            fields.append(("_pad%d" % pads,
                           ctypes.c_ubyte * (size - ctypes.sizeof(cls))))
            cls = type(name, (ctypes.Structure,), {"_fields_": fields})
        check_layout(cls, size, members)
        self.structs[name] = cls
        return cls


def check_layout(cls, size, members):
    """Raise LayoutError unless `cls` has `size` and every member at its
    described offset."""
    if ctypes.sizeof(cls) != size:
        raise LayoutError("%s: ctypes builds %d bytes, the library's struct "
                          "has %d" % (cls.__name__, ctypes.sizeof(cls), size))
    for m in members:
        field = getattr(cls, m["name"])
        if field.offset != m["offset"] or field.size != m["size"]:
            raise LayoutError("%s.%s: at %d (%d bytes) in ctypes, %d (%d) in "
                              "the library" % (cls.__name__, m["name"],
                                               field.offset, field.size,
                                               m["offset"], m["size"]))


def row_members(relation):
    """A relation's struct members: its columns, then `nulls`."""
    return list(relation["columns"]) + [{
        "name": "nulls", "c_type": "uint64_t",
        "offset": relation["nulls_offset"], "size": 8}]


class Native:
    """libspotdb as loaded: the CDLL, its description, the structs built
    from it, and every described function with its signature set."""

    def __init__(self, path=None):
        self.lib = load_library(path)
        self.doc = read_description(self.lib)
        # older libraries have no "opaque": spotdb_db was the only handle
        self.types = Types(self.doc.get("opaque", ("spotdb_db",)))
        self.relations = {}
        self.functions = {}
        try:
            self._build_structs()
            self._bind_functions()
        except KeyError as e:
            raise LayoutError("the library describes a C type this binding "
                              "does not know: %s" % e) from None

    def _build_structs(self):
        t = self.types
        for rel in self.doc["relations"]:
            t.struct(rel["c_struct"], rel["sizeof"], row_members(rel))
            t.struct(rel["filter"]["c_struct"], rel["filter"]["sizeof"],
                     rel["filter"]["members"])
            t.struct(rel["rows"]["c_struct"], rel["rows"]["sizeof"],
                     rel["rows"]["members"])
            self.relations[rel["name"]] = rel
        # The global structs refer to each other: build each once the ones
        # it points to exist.
        todo = list(self.doc["structs"])
        while todo:
            left = []
            for s in todo:
                try:
                    t.struct(s["name"], s["sizeof"], s["members"])
                except KeyError:
                    left.append(s)
            if len(left) == len(todo):
                raise LayoutError("unresolvable types in %s" %
                                  [s["name"] for s in left])
            todo = left

    def _bind(self, f):
        fn = getattr(self.lib, f["name"])
        fn.argtypes = [self.types.resolve(p["c_type"]) for p in f["params"]]
        fn.restype = (None if f["returns"] == "void"
                      else self.types.resolve(f["returns"]))
        self.functions[f["name"]] = fn
        return fn

    def _bind_functions(self):
        for f in self.doc["functions"]:
            self._bind(f)
        for rel in self.doc["relations"]:
            for f in rel["functions"].values():
                self._bind(f)

    def struct(self, name):
        """The ctypes.Structure built for the C struct `name`."""
        return self.types.structs[name]

    def described_struct(self, name):
        for s in self.doc["structs"]:
            if s["name"] == name:
                return s
        raise KeyError(name)

    def __getattr__(self, name):
        # native.spotdb_open(...) and the like.
        try:
            return self.__dict__["functions"][name]
        except KeyError:
            raise AttributeError(name) from None
