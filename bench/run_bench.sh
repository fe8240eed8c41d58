#!/usr/bin/env bash
# run_bench.sh - run every benchmark executable and print one combined table
# (../shared/BENCH.md). `make bench` builds them in build-release/ first.
#
#   MSGR_BENCH_DIR   where the bench_* executables are (default build-release/bench)
#   MSGR_BENCH_OUT   the JSON lines file, truncated at the start
#                    (default build/bench/results.jsonl)
#   MSGR_BENCH_ARGS  extra arguments for every benchmark (e.g. "--runs 7")
#
# Each benchmark prints its own rows as it goes and appends JSON lines to
# MSGR_BENCH_OUT; the combined table at the end is read back from that file.
# Exit status: 1 if any benchmark failed (the others still run), else 0.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=${MSGR_BENCH_DIR:-$root/build-release/bench}
out=${MSGR_BENCH_OUT:-$root/build/bench/results.jsonl}
read -r -a extra_args <<<"${MSGR_BENCH_ARGS:-}"

shopt -s nullglob
benches=()
for f in "$bench_dir"/bench_*; do
    [[ -f $f && -x $f ]] && benches+=("$f")
done
if ((${#benches[@]} == 0)); then
    echo "run_bench: no bench_* executables in $bench_dir (run 'make bench')" >&2
    exit 1
fi

mkdir -p "$(dirname "$out")"
: >"$out"
export MSGR_BENCH_OUT=$out

echo "== msgrsim benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "   commit $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)," \
     "$(nproc) CPUs, $(uname -sr)," \
     "load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "   results: $out"

failed=()
for b in "${benches[@]}"; do
    name=$(basename "$b")
    echo
    echo "== $name"
    start=$SECONDS
    if "$b" "${extra_args[@]}"; then
        echo "   ($name: $((SECONDS - start)) s)"
    else
        rc=$?
        echo "run_bench: $name failed (exit $rc)" >&2
        failed+=("$name")
    fi
done

# The combined table, read back from our own JSON lines (flat objects with
# a fixed set of keys, written by bench/common/bench_common.c).
echo
echo "== combined (median of runs; ratio = value / baseline value)"
awk '
function field(key,    re, s) {
    re = "\"" key "\": *(\"[^\"]*\"|[^,}]*)"
    if (!match($0, re)) return "-"
    s = substr($0, RSTART, RLENGTH)
    sub("^\"" key "\": *", "", s)
    gsub(/^"|"$/, "", s)
    return s == "null" ? "-" : s
}
function human(v,    a) {
    if (v == "-") return v
    v += 0
    a = v < 0 ? -v : v
    if (a >= 1e9) return sprintf("%.3gG", v / 1e9)
    if (a >= 1e6) return sprintf("%.3gM", v / 1e6)
    if (a >= 1e4) return sprintf("%.3gk", v / 1e3)
    if (a >= 100 || a == 0) return sprintf("%.0f", v)
    return sprintf("%.3g", v)
}
BEGIN {
    fmt = "%-18s %-26s %-12s %9s %-5s %9s %7s %8s\n"
    printf fmt, "bench", "case", "metric", "value", "unit", "base.val", "ratio", "spread%"
}
/^\{/ {
    r = field("ratio")
    s = field("spread_pct")
    printf fmt, field("bench"), field("case"), field("metric"),
        human(field("value")), field("unit"), human(field("baseline_value")),
        r == "-" ? r : sprintf("%.3g", r), s == "-" ? s : sprintf("%.1f", s)
}
' "$out"

if ((${#failed[@]} > 0)); then
    echo "run_bench: failed: ${failed[*]}" >&2
    exit 1
fi
