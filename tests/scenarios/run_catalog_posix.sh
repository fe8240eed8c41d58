#!/bin/sh
# The catalogue's scenarios labelled `# posix: yes` run on real sockets on
# loopback (--stack posix) and every one of their expectations holds. Runs
# are in wall time and not bit-reproducible, so a failure prints the whole
# run; RUNS=N repeats the subset N times (flakiness hunts).
set -u
MSGRSIM=$1
CATALOG=$2
RUNS=${RUNS:-1}
files=$(grep -rlx '# posix: yes' "$CATALOG" --include='*.scn' | LC_ALL=C sort)
[ -n "$files" ] || { echo "FAIL: no .scn under $CATALOG is labelled '# posix: yes'"; exit 1; }
fail=0
n=0
i=0
while [ $i -lt "$RUNS" ]; do
    i=$((i + 1))
    for f in $files; do
        n=$((n + 1))
        out=$("$MSGRSIM" run --quiet --stack posix "$f" 2>&1)
        rc=$?
        if [ $rc -ne 0 ]; then
            echo "FAIL ($rc): $f"
            echo "$out" | sed 's/^/    /'
            fail=$((fail + 1))
        else
            echo "ok: $f ($(echo "$out" | grep '^verdict:'))"
        fi
    done
done
echo "$n posix runs, $fail failed"
[ $fail -eq 0 ]
