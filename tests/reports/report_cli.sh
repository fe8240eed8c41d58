#!/bin/sh
# msgrsim report as a person uses it: trace a catalogue scenario, write
# the HTML report and the Perfetto export, and check what came out
# against the trace itself (python3's json and sqlite3 modules).
# usage: report_cli.sh MSGRSIM SCENARIO.scn
set -eu
msgrsim=$1
scn=$2
tmp=$(mktemp -d /tmp/msgrsim-report-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$msgrsim" run --quiet --trace "$tmp/t.db" "$scn" >/dev/null

out=$("$msgrsim" report "$tmp/t.db" -o "$tmp/r")
[ "$out" = "report: $tmp/r/index.html" ] || { echo "unexpected: $out"; exit 1; }
for f in index.html states.dot states.svg topology.dot topology.svg \
         sequence.svg charts.svg states-c1.dot states-c1.svg; do
    [ -s "$tmp/r/$f" ] || { echo "missing $f"; exit 1; }
done

# a pair and a window chosen by hand
"$msgrsim" report "$tmp/t.db" -o "$tmp/p" --format svg --pair osd.1-osd.0 \
    --from 1ms --until 50ms >/dev/null
grep -q '>osd.1</text>' "$tmp/p/sequence.svg" || { echo "pair not drawn"; exit 1; }
[ ! -e "$tmp/p/index.html" ] || { echo "svg format wrote html"; exit 1; }

# usage errors
if "$msgrsim" report "$tmp/t.db" 2>/dev/null; then echo "no -o accepted"; exit 1; fi
set +e
"$msgrsim" report "$tmp/t.db" -o "$tmp/x" --format png 2>/dev/null
[ $? -eq 2 ] || { echo "bad format not a usage error"; exit 1; }
"$msgrsim" report "$tmp/none.db" -o "$tmp/x" 2>/dev/null
[ $? -eq 66 ] || { echo "missing trace not 66"; exit 1; }
"$msgrsim" report "$tmp/t.db" -o "$tmp/x" --run 9 2>"$tmp/err9"
[ $? -eq 65 ] || { echo "missing run not 65"; exit 1; }
grep -q "has no run 9" "$tmp/err9" || { echo "missing run not named"; exit 1; }
# a pcap needs a captured run: say so, exit 65 (69 when built without libpcap)
"$msgrsim" report "$tmp/t.db" -o "$tmp/x" --format pcap 2>"$tmp/errp"
rc=$?
if [ $rc -eq 65 ]; then
    grep -q -- "--capture" "$tmp/errp" || { echo "pcap hint missing"; exit 1; }
elif [ $rc -ne 69 ]; then
    echo "pcap of an uncaptured run exited $rc"; exit 1
fi
set -e

"$msgrsim" report "$tmp/t.db" -o "$tmp/pf" --format perfetto >/dev/null
python3 - "$tmp/t.db" "$tmp/pf/trace.json" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
doc = json.load(open(sys.argv[2]))
ev = doc["traceEvents"]
run = db.execute("SELECT max(id) FROM run").fetchone()[0]

procs = {e["pid"]: e["args"]["name"] for e in ev
         if e["ph"] == "M" and e["name"] == "process_name"}
for nid, name, inc in db.execute(
        "SELECT id, name, incarnation FROM node WHERE run = ?", (run,)):
    want = name if inc == 0 else "%s (incarnation %d)" % (name, inc)
    assert procs.get(nid) == want, (nid, procs.get(nid), want)

threads = {(e["pid"], e["tid"]) for e in ev
           if e["ph"] == "M" and e["name"] == "thread_name"}
for cid, node in db.execute("SELECT id, node FROM conn WHERE run = ?", (run,)):
    assert (node, cid) in threads, ("no thread for connection", cid)

delivered = db.execute(
    "SELECT count(*) FROM message WHERE run = ? AND delivered_t IS NOT NULL "
    "AND sent_t IS NOT NULL", (run,)).fetchone()[0]
starts = [e for e in ev if e["ph"] == "s"]
ends = [e for e in ev if e["ph"] == "f"]
assert delivered > 0
assert len(starts) == delivered, (len(starts), delivered)
assert len(ends) == delivered, (len(ends), delivered)
assert {e["id"] for e in starts} == {e["id"] for e in ends}

states = db.execute("SELECT count(*) FROM event WHERE run = ? AND "
                    "kind = 'state' AND conn IS NOT NULL", (run,)).fetchone()[0]
spans = [e for e in ev if e["ph"] == "X" and e.get("cat") == "state"]
assert len(spans) == states, (len(spans), states)
assert all(e["dur"] >= 0 for e in spans)

faults = db.execute("SELECT count(*) FROM fault WHERE run = ?",
                    (run,)).fetchone()[0]
glob = [e for e in ev if e["ph"] == "i" and e.get("s") == "g"
        and e["name"].startswith("fault:")]
assert len(glob) == faults, (len(glob), faults)
print("perfetto: %d events, %d flows, %d state spans, %d faults"
      % (len(ev), len(starts), len(spans), faults))
PY
echo "report_cli: ok"
