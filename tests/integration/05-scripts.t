#!/bin/bash
# The lab scripts run against a real server and check their own results.
PORT=47105
PROG=1061000005
. "$(dirname "$0")/../lib.sh"

ensure_rpcbind
start_server
for s in "$TOP"/scripts/0*.sh; do
    IMGPROC="$IMGPROC" PROG=$PROG IMGPROC_STATE="$TMP/state" bash "$s" >"$TMP/out" 2>&1
    rc=$?
    ok $rc "$(basename "$s") passes its own checks"
    [ $rc -eq 0 ] || sed 's/^/# /' "$TMP/out"
    grep -q "^FAIL" "$TMP/out"; is "$?" 1 "$(basename "$s") printed no FAIL"
done
stop_server
# A script must fail when the service is not there.
IMGPROC="$IMGPROC" PROG=$PROG bash "$TOP/scripts/01-discovery.sh" >/dev/null 2>&1
is "$?" 1 "01-discovery.sh fails when the server is gone"
done_testing
