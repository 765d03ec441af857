#!/bin/sh
# Build app.c against an installed libspotdb the way any outside project
# can: plain cc and pkg-config, nothing from this repository's build.
#
#   examples/pkgconfig/build.sh [OUTPUT]      (default: ./app)
#
# Set PKG_CONFIG_PATH when libspotdb is installed under a prefix
# pkg-config does not search (tools/install-check does).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-app}
# The sources before the libraries, which linkers with --as-needed want.
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -o "$out" "$here/app.c" $(pkg-config --cflags --libs libspotdb)
