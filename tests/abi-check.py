#!/usr/bin/env python3
"""The ABI test of docs/abi.md, on a built or installed libspotdb.so.

Fails when the shared library:
- has a soname other than libspotdb.so.<soversion>;
- exports (nm -D --defined-only) anything but public spotdb_* functions
  and the version node SPOTDB_<soversion>, or a symbol without that
  version;
- lost a symbol of tests/abi/symbols.txt (an ABI break), or exports one
  the list does not have (a new symbol is added to the list on purpose);
- exports a symbol no public header declares with SPOTDB_API, or lacks one
  a header declares (a consumer would fail to link).

Usage: abi-check.py LIBRARY SOVERSION SYMBOLS_TXT HEADER_DIR...
(the header directories hold the public headers, version.h included).
"""
import re
import subprocess
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
import public_headers  # noqa: E402  (beside this script)

PUBLIC = re.compile(r'^spotdb_[a-z0-9][a-z0-9_]*$')


def run(*cmd):
    try:
        return subprocess.run(cmd, check=True, capture_output=True,
                              text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit('abi-check: %s failed: %s' % (cmd[0], e))


def soname(lib):
    m = re.search(r'\(SONAME\)\s+Library soname: \[([^\]]+)\]',
                  run('readelf', '-d', lib))
    return m.group(1) if m else None


def exported(lib):
    """(name, version or None, nm type) of each defined dynamic symbol."""
    out = []
    for line in run('nm', '-D', '--defined-only', lib).splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, sym = fields[-2], fields[-1]
        name, _, version = sym.partition('@')
        out.append((name, version.lstrip('@') or None, kind))
    return out


def declared(header_dirs):
    """Names the public headers declare with SPOTDB_API."""
    names = set()
    for text, _ in public_headers.read(header_dirs):
        for decl in re.findall(r'\bSPOTDB_API\b([^;{]*)', text):
            # A function: the name before the first parenthesis; a
            # variable: the last identifier.
            head = decl.split('(')[0] if '(' in decl else decl
            idents = re.findall(r'[A-Za-z_]\w*', head.split('[')[0])
            if idents:
                names.add(idents[-1])
    return names


def listed(path):
    with open(path, encoding='utf-8') as fh:
        return {l.split('#')[0].strip() for l in fh} - {''}


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    lib, sover, symbols_txt, header_dirs = argv[1], argv[2], argv[3], argv[4:]
    node = 'SPOTDB_' + sover
    problems = []

    want = 'libspotdb.so.' + sover
    got = soname(lib)
    if got != want:
        problems.append('soname is %r, expected %r' % (got, want))

    names = set()
    for name, version, kind in exported(lib):
        if name == node and kind == 'A':
            continue                    # the version node's own symbol
        if not PUBLIC.match(name):
            problems.append('exported but not public spotdb_*: %s' % name)
            continue
        if kind not in ('T', 'i'):
            problems.append('%s is exported as nm type %s, not a function '
                            '(docs/abi.md exports functions only)'
                            % (name, kind))
        if version != node:
            problems.append('%s has version %s, expected %s (version '
                            'script lib/libspotdb.map)' % (name, version, node))
        names.add(name)
    if not names:
        problems.append('no spotdb_* symbol exported at all')

    api = listed(symbols_txt)
    for n in sorted(api - names):
        problems.append('removed from the library: %s (an ABI break, see '
                        'docs/abi.md)' % n)
    for n in sorted(names - api):
        problems.append('exported but not in %s: %s (adding a symbol is '
                        'compatible: add it to the list)' % (symbols_txt, n))

    decl = declared(header_dirs)
    for n in sorted(names - decl):
        problems.append('exported but declared in no public header: %s' % n)
    for n in sorted(decl - names):
        problems.append('declared SPOTDB_API in a header but not exported: '
                        '%s' % n)

    for p in problems:
        print('abi-check: ' + p, file=sys.stderr)
    if problems:
        return 1
    print('abi-check: %s: soname %s, %d symbols, all %s, as listed and '
          'declared' % (lib, got, len(names), node))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
