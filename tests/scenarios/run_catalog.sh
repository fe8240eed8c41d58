#!/bin/sh
# Every scenario of the catalogue runs on the simulator, every one of its
# expectations holds, and its trace replays bit for bit (msgrsim replay
# runs it again from the stored text and seed and compares the events).
set -u
MSGRSIM=$1
CATALOG=$2
files=$(find "$CATALOG" -name '*.scn' | LC_ALL=C sort)
[ -n "$files" ] || { echo "FAIL: no .scn under $CATALOG"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
n=0
for f in $files; do
    n=$((n + 1))
    db=$tmp/$n.db
    out=$("$MSGRSIM" run --quiet --trace "$db" "$f" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL ($rc): $f"
        echo "$out" | sed 's/^/    /'
        fail=$((fail + 1))
        continue
    fi
    rep=$("$MSGRSIM" replay "$db" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL (replay $rc): $f"
        echo "$rep" | sed 's/^/    /'
        fail=$((fail + 1))
        continue
    fi
    echo "ok: $f ($(echo "$out" | grep '^fingerprint:'), replayed)"
done
echo "$n scenarios, $fail failed"
[ $fail -eq 0 ]
