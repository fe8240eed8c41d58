#!/usr/bin/env bash
# probe_ceph_mon.sh MSGRSIM SHARED_DIR WORK_DIR
#
# Starts a real ceph-mon on 127.0.0.1 (msgr2 on 23300, msgr1 on 26789), runs
# `msgrsim probe` against it in msgr2.1 and msgr2.0, checks each got a
# MON_MAP from a mon with the expected address vector, and stops the mon.
# Also checks that probing a port where nothing listens fails cleanly.
set -euo pipefail
msgrsim=$1 shared=$2 work=$3
tool=$shared/tools/ceph-mon-loopback.sh

if [[ ! -x $tool && ! -f $tool ]]; then
    echo "interop: $tool not found (shared/ must sit beside the project)" >&2
    exit 1
fi
if ! command -v ceph-mon >/dev/null && [[ $(id -u) != 0 ]]; then
    echo "interop: SKIP: ceph-mon is not installed and I am not root to install it" >&2
    exit 77
fi

# Free ports: several checkouts may run this test at once on one machine.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
v2=23300
while ! port_free "$v2" || ! port_free $((v2 + 3489)); do
    v2=$((v2 + 7))
    [[ $v2 -lt 24300 ]] || { echo "interop: FAIL: no free port pair" >&2; exit 1; }
done
v1=$((v2 + 3489))
export CEPH_MON_V2_PORT=$v2 CEPH_MON_V1_PORT=$v1 CEPH_MON_MSGR=both
rm -rf "$work"
mkdir -p "$work"
cleanup() { bash "$tool" stop "$work" >/dev/null 2>&1 || true; }
trap cleanup EXIT
bash "$tool" start "$work" >/dev/null

fail=0
for rev in 1 0; do
    args=()
    [[ $rev == 0 ]] && args=(--rev0)
    out=$work/probe-rev$rev.txt
    if ! "$msgrsim" probe "${args[@]}" --timeout 20 v2:127.0.0.1:$v2 >"$out" 2>&1; then
        echo "interop: FAIL: probe (msgr2.$rev) exited non-zero:" >&2
        cat "$out" >&2
        fail=1
        continue
    fi
    cat "$out"
    for want in "connected: peer mon." "(msgr2.$rev)" \
                "[v2:127.0.0.1:$v2/0,v1:127.0.0.1:$v1/0]" \
                "message: type 4 (MON_MAP) seq 1" "ok: MON_MAP received"; do
        if ! grep -qF -- "$want" "$out"; then
            echo "interop: FAIL: msgr2.$rev output lacks '$want'" >&2
            fail=1
        fi
    done
done

# nothing listens on 23301: the probe must fail with exit 1 and say why
set +e
"$msgrsim" probe --timeout 3 v2:127.0.0.1:23301 >"$work/refused.txt" 2>&1
rc=$?
set -e
if [[ $rc != 1 ]] || ! grep -q "refused" "$work/refused.txt"; then
    echo "interop: FAIL: probe of a closed port: exit $rc, output:" >&2
    cat "$work/refused.txt" >&2
    fail=1
fi

if [[ $fail == 0 ]]; then
    echo "interop: 3 passed, 0 failed"
else
    echo "interop: FAILED" >&2
fi
exit $fail
