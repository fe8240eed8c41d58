#!/bin/sh
# Every scenario of the catalogue runs on the simulator and every one of
# its expectations holds; a failure prints the run and its reproduction.
set -u
MSGRSIM=$1
CATALOG=$2
files=$(find "$CATALOG" -name '*.scn' | LC_ALL=C sort)
[ -n "$files" ] || { echo "FAIL: no .scn under $CATALOG"; exit 1; }
fail=0
n=0
for f in $files; do
    n=$((n + 1))
    out=$("$MSGRSIM" run --quiet "$f" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL ($rc): $f"
        echo "$out" | sed 's/^/    /'
        fail=$((fail + 1))
    else
        echo "ok: $f ($(echo "$out" | grep '^fingerprint:'))"
    fi
done
echo "$n scenarios, $fail failed"
[ $fail -eq 0 ]
