#!/bin/sh
# Every scenario of the catalogue must stay valid: msgrsim check over all.
set -u
MSGRSIM=$1
CATALOG=$2
files=$(find "$CATALOG" -name '*.scn' | LC_ALL=C sort)
[ -n "$files" ] || { echo "FAIL: no .scn under $CATALOG"; exit 1; }
# shellcheck disable=SC2086
exec "$MSGRSIM" check $files
