#!/bin/sh
# msgrsim check through the binary: exit codes (0, 65, 66, 2) and the
# compiler-format diagnostics on stderr.
set -u
MSGRSIM=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cat > "$T/good.scn" <<'SCN'
node osd.[0..1] policy lossless_peer
at 0 start all
at 1ms osd.0 send osd.1 count 10
expect delivered osd.0 -> osd.1 all exactly_once in_order
SCN
cat > "$T/bad.scn" <<'SCN'
node osd.[0..1] policy lossless_peer
at 0 start all
at 1s dorp osd.0 -> osd.1 30%
at 2s delay osd.0 -> osd.1 250
SCN

out=$("$MSGRSIM" check "$T/good.scn" 2>"$T/err"); rc=$?
[ $rc -eq 0 ] || fail "good file: exit $rc"
[ "$out" = "$T/good.scn: ok (2 nodes, 2 actions, 1 expectation)" ] || fail "good file printed '$out'"
[ ! -s "$T/err" ] || fail "good file wrote to stderr"

out=$("$MSGRSIM" check -q "$T/good.scn" 2>&1); rc=$?
[ $rc -eq 0 ] && [ -z "$out" ] || fail "-q: exit $rc, printed '$out'"

"$MSGRSIM" check "$T/good.scn" "$T/bad.scn" >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 65 ] || fail "bad file: exit $rc, want 65"
grep -qx "$T/bad.scn:3:7: error: unknown fault 'dorp' (did you mean 'drop'?)" "$T/err" \
    || fail "no dorp diagnostic: $(cat "$T/err")"
grep -q "^$T/bad.scn:4:28: error: expected a duration like 250ms, got '250'" "$T/err" \
    || fail "no duration diagnostic: $(cat "$T/err")"
grep -qx "$T/bad.scn: 2 errors" "$T/err" || fail "no error count"
grep -q "good.scn: ok" "$T/out" || fail "the good file was not reported ok"

"$MSGRSIM" check "$T/missing.scn" "$T/bad.scn" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 66 ] || fail "missing file: exit $rc, want 66"
grep -q "missing.scn: No such file or directory" "$T/err" || fail "no open error"

"$MSGRSIM" check >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "no FILE: exit $rc, want 2"
"$MSGRSIM" check --bogus "$T/good.scn" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || fail "bad option: exit $rc, want 2"
echo ok
