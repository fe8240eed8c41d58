#!/bin/sh
# msgrsim replay: a faithful trace replays; a tampered one (another seed
# stored) is caught and the first diverging event named; --events filters.
set -u
MSGRSIM=$1
SCN=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$MSGRSIM" run --quiet --trace "$tmp/t.db" "$SCN" >"$tmp/run.txt" 2>&1 ||
    fail "run: $(cat "$tmp/run.txt")"
"$MSGRSIM" replay "$tmp/t.db" >"$tmp/ok.txt" 2>&1 || fail "replay of a good trace: $(cat "$tmp/ok.txt")"
grep -q "replay: ok" "$tmp/ok.txt" || fail "no ok line"
# a second run in the same file, then tamper with its seed
"$MSGRSIM" run --quiet --seed 99 --trace "$tmp/t.db" "$SCN" >/dev/null 2>&1
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 CLI missing"; exit 77; }
sqlite3 "$tmp/t.db" "UPDATE run SET seed = 98 WHERE id = 2" || fail "sqlite3 update"
"$MSGRSIM" replay "$tmp/t.db" --run 2 >"$tmp/bad.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "tampered replay exited $rc: $(cat "$tmp/bad.txt")"
grep -q "first divergence at event" "$tmp/bad.txt" || fail "no divergence named: $(cat "$tmp/bad.txt")"
grep -q "DIVERGED" "$tmp/bad.txt" || fail "no DIVERGED line"
# run 1 still replays
"$MSGRSIM" replay "$tmp/t.db" --run 1 >/dev/null 2>&1 || fail "run 1 no longer replays"
# --events with filters prints only matching lines
"$MSGRSIM" replay "$tmp/t.db" --run 1 --events --node osd.1 --until 5ms >"$tmp/ev.txt" 2>&1 || fail "events"
[ -s "$tmp/ev.txt" ] || fail "no events printed"
if grep -v " osd.1 " "$tmp/ev.txt" | grep -q .; then fail "--node leaked other nodes"; fi
# usage errors exit 2
"$MSGRSIM" replay "$tmp/t.db" --node osd.1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--node without --events"
"$MSGRSIM" replay "$tmp/t.db" --run 7 >/dev/null 2>&1; [ $? -eq 65 ] || fail "missing run"
"$MSGRSIM" replay "$tmp/nope.db" >/dev/null 2>&1; [ $? -eq 66 ] || fail "missing file"
# a run that ends with messages still queued closes its trace complete
pending=$(dirname "$0")/pending-at-end.scn
"$MSGRSIM" run --quiet --trace "$tmp/p.db" "$pending" >"$tmp/p.txt" 2>&1 ||
    fail "pending-at-end: $(cat "$tmp/p.txt")"
grep -q "^trace: " "$tmp/p.txt" || fail "pending-at-end: no trace line: $(cat "$tmp/p.txt")"
"$MSGRSIM" replay "$tmp/p.db" >/dev/null 2>&1 || fail "pending-at-end does not replay"
echo "ok"
