#!/usr/bin/env python3
"""spotdb_schema_describe() against the public headers.

A binding generator trusts the document to hold the whole API.  Its
entries are written by hand in lib/describe.c, where the compiler checks
each one that is there but cannot notice one that is missing: a new
function, struct member or constant.  This check reads the headers and
fails when the document lacks, or disagrees with:
- a function declared with SPOTDB_API (its prototype, to the token);
- a public struct (its members, in order);
- an integer constant: a #define or an enum value (column bits, error
  codes and filter versions are checked where the document holds them);
- an opaque handle type (a struct declared without a body).

Usage: describe-check.py DESCRIBE_DUMP HEADER_DIR...
(DESCRIBE_DUMP: the built tests/describe_dump, which prints the document).
"""
import json
import re
import subprocess
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
import public_headers  # noqa: E402  (beside this script)

IDENT = r'[A-Za-z_]\w*'


def tokens(s):
    """C text as its tokens joined by one space, as # stringizes it, but
    blind to the spacing choices of the two sides."""
    return ' '.join(re.findall(r'\w+|\.\.\.|\S', s))


def headers(dirs):
    functions, structs, constants, bits, opaque = {}, {}, {}, {}, set()
    for text, defines in public_headers.read(dirs):
        for decl in re.findall(r'\bSPOTDB_API\b([^;{]*);', text):
            m = re.match(r'\s*(.*?)\b(spotdb_\w+)\s*(\(.*\))\s*$', decl,
                         flags=re.S)
            if m:
                functions[m.group(2)] = tokens(
                    m.group(1) + m.group(2) + m.group(3))
        for name in re.findall(r'typedef\s+struct\s+\w+\s+(' + IDENT +
                               r')\s*;', text):
            opaque.add(name)
        for body, name in re.findall(r'typedef\s+struct\s+\w+\s*\{(.*?)'
                                     r'\}\s*(' + IDENT + r')\s*;', text,
                                     flags=re.S):
            structs[name] = [re.findall(IDENT, m.split('[')[0])[-1]
                             for m in body.split(';') if m.strip()]
        for body in re.findall(r'typedef\s+enum\s+\w+\s*\{(.*?)\}', text,
                               flags=re.S):
            for name, value in re.findall(r'(SPOTDB_\w+)\s*=\s*(-?\d+)',
                                          body):
                constants[name] = int(value)
        for name, value in defines:
            m = re.fullmatch(r'\(?\s*(-?\d+)\s*\)?', value.strip())
            if m:
                constants[name] = int(m.group(1))
            m = re.fullmatch(r'SPOTDB_COLUMN_BIT\((\d+)\)', value.strip())
            if m:
                bits[name] = int(m.group(1))
    return functions, structs, constants, bits, opaque


def document(program):
    """The document as tests/describe_dump.c prints it: a program, not
    ctypes, since a sanitized library will not load into Python."""
    out = subprocess.run([program], check=True, capture_output=True)
    return json.loads(out.stdout.decode('utf-8'))


def described(doc):
    """(functions: name -> prototype, structs: name -> members, constants
    with filter versions and column bits, error codes)."""
    functions = {f['name']: f['prototype'] for f in doc['functions']}
    structs = {s['name']: [m['name'] for m in s['members']]
               for s in doc['structs']}
    constants = dict(doc['constants'])
    for r in doc['relations']:
        for f in r['functions'].values():
            functions[f['name']] = f['prototype']
        structs[r['c_struct']] = [c['name'] for c in r['columns']] + ['nulls']
        structs[r['rows']['c_struct']] = [m['name']
                                          for m in r['rows']['members']]
        flt = r['filter']
        structs[flt['c_struct']] = [m['name'] for m in flt['members']]
        constants['SPOTDB_%s_FILTER_VERSION' % r['entity'].upper()] = \
            flt['version']
    errors = {e['name']: e['code'] for e in doc['errors']}
    return functions, structs, constants, errors


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    doc = document(argv[1])
    h_fns, h_structs, h_consts, h_bits, h_opaque = headers(argv[2:])
    d_fns, d_structs, d_consts, d_errors = described(doc)
    problems = []

    for name, proto in sorted(h_fns.items()):
        # the document's prototypes went through the preprocessor
        proto = re.sub(r'\bSPOTDB_\w+\b',
                       lambda m: str(h_consts.get(m.group(0), m.group(0))),
                       proto)
        if name not in d_fns:
            problems.append('function %s is not described' % name)
        elif tokens(d_fns[name]) != proto:
            problems.append('function %s: described as\n    %s\n  declared '
                            'as\n    %s' % (name, d_fns[name], proto))
    for name in sorted(set(d_fns) - set(h_fns)):
        problems.append('function %s is described but not declared' % name)

    for name, members in sorted(h_structs.items()):
        if name not in d_structs:
            problems.append('struct %s is not described' % name)
        elif d_structs[name] != members:
            problems.append('struct %s: described members %s, declared %s'
                            % (name, d_structs[name], members))

    if set(doc['opaque']) != h_opaque:
        problems.append('opaque types: described %s, declared %s'
                        % (sorted(doc['opaque']), sorted(h_opaque)))

    bits = {}
    for r in doc['relations']:
        for c in r['columns']:
            bits['SPOTDB_%s_%s' % (r['entity'].upper(),
                                   c['name'].upper())] = c['bit']
    for name, value in sorted(h_consts.items()):
        if name in d_errors:
            got = d_errors[name]
        elif name in d_consts:
            got = d_consts[name]
        else:
            problems.append('constant %s = %d is not described'
                            % (name, value))
            continue
        if got != value:
            problems.append('constant %s: described %r, declared %d'
                            % (name, got, value))
    for name, bit in sorted(h_bits.items()):
        if bits.get(name) != 1 << bit:
            problems.append('column bit %s: described %r, declared 1 << %d'
                            % (name, bits.get(name), bit))
    for name in sorted(set(bits) - set(h_bits)):
        problems.append('column bit %s is described but not declared'
                        % name)

    for p in problems:
        print('describe-check: ' + p, file=sys.stderr)
    print('describe-check: %d functions, %d structs, %d constants and %d '
          'column bits of the headers; %d problems'
          % (len(h_fns), len(h_structs), len(h_consts), len(h_bits),
             len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
