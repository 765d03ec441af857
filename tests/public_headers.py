"""The public headers as tests/abi-check.py and tests/describe-check.py
read them: comments removed, preprocessor lines set apart."""
import os
import re


def read(header_dirs):
    """For each header of the directories (by name): its text without
    comments and preprocessor lines, and its `#define SPOTDB_...` macros
    as (name, value text) pairs."""
    out = []
    for d in header_dirs:
        for f in sorted(os.listdir(d)):
            if not f.endswith('.h'):
                continue
            with open(os.path.join(d, f), encoding='utf-8') as fh:
                text = fh.read()
            text = re.sub(r'/\*.*?\*/|//[^\n]*', ' ', text, flags=re.S)
            defines = re.findall(r'^[ \t]*#[ \t]*define[ \t]+(SPOTDB_\w+)'
                                 r'[ \t]+([^\n]*)$', text, flags=re.M)
            # Preprocessor lines (the SPOTDB_API definition itself among
            # them) are not declarations.
            text = re.sub(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', ' ', text,
                          flags=re.M)
            out.append((text, defines))
    return out
