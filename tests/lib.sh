# lib.sh - shared by the integration tests: TAP output, rpcbind, a private server, images.
# Each test sets PORT and PROG (private: never the default program number) before sourcing.

BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
IMGPROCD="$TOP/$BUILD/imgprocd"
IMGPROC="$TOP/$BUILD/imgproc"
HOSTILE="$TOP/$BUILD/tests/hostile"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-test.XXXXXX")
NTEST=0
NFAIL=0
SERVER_PID=

# A slot of ports and program numbers for this run of this file, so that two
# checkouts (or two runs) can test at once: slot N moves PORT by N*200 and
# PROG by N*100.  The slot is held with flock(1) on an open descriptor for as
# long as the test runs, and is free again when it exits, however it exits.
for slot in $(seq 0 15); do
    exec {SLOT_FD}>"${TMPDIR:-/tmp}/imgproc-test-slot$slot-$(basename "$0").lock"
    flock -n "$SLOT_FD" && break
    exec {SLOT_FD}>&-
    [ "$slot" -eq 15 ] && { echo "Bail out! no free test slot (16 runs of $0 at once?)"; exit 1; }
done
PORT=$((PORT + slot * 200))
PROG=$((PROG + slot * 100))
PROGX=$(printf '0x%X' "$PROG")

cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done     # host_start's
    [ -n "$KDC_PID" ] && kill -TERM "$KDC_PID" 2>/dev/null
    [ -n "$WEB_PID" ] && kill -KILL "$WEB_PID" 2>/dev/null
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ok() {      # ok CONDITION-STATUS DESCRIPTION
    NTEST=$((NTEST + 1))
    if [ "$1" -eq 0 ]; then
        echo "ok $NTEST - $2"
    else
        echo "not ok $NTEST - $2"
        NFAIL=$((NFAIL + 1))
    fi
}

is() {      # is ACTUAL EXPECTED DESCRIPTION
    NTEST=$((NTEST + 1))
    if [ "$1" = "$2" ]; then
        echo "ok $NTEST - $3"
    else
        echo "not ok $NTEST - $3"
        echo "#   got:      '$1'"
        echo "#   expected: '$2'"
        NFAIL=$((NFAIL + 1))
    fi
}

like() {    # like ACTUAL GLOB DESCRIPTION
    NTEST=$((NTEST + 1))
    case "$1" in
    $2) echo "ok $NTEST - $3" ;;
    *)  echo "not ok $NTEST - $3"
        echo "#   got:      '$1'"
        echo "#   expected: '$2'"
        NFAIL=$((NFAIL + 1)) ;;
    esac
}

done_testing() {
    echo "1..$NTEST"
    [ "$NFAIL" -eq 0 ]
    exit $?
}

bail() {
    echo "Bail out! $*"
    exit 1
}

# The tests' fixed ports (47000-50999, slots included) lie in the kernel's
# range for ephemeral ports (32768-60999): a client's connection to rpcbind
# could take one, and its TIME-WAIT then keeps a server from binding it
# (seen: imgproc-web "Address already in use").  As root, keep the kernel
# from handing them out; a range already reserved is left as it is.
if [ "$(id -u)" -eq 0 ] && [ -z "$(sysctl -n net.ipv4.ip_local_reserved_ports 2>/dev/null)" ]; then
    sysctl -qw net.ipv4.ip_local_reserved_ports=47000-50999 2>/dev/null
fi

# rpcbind must run; start it when we may (root), as the Makefile's deps do.
ensure_rpcbind() {
    rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || bail "rpcbind is not running (start it: sudo rpcbind -w)"
    # rpcbind returns once its sockets are bound.
    rpcbind -w || bail "cannot start rpcbind"
    rpcinfo -p 127.0.0.1 >/dev/null 2>&1 || bail "rpcbind does not answer"
}

# start_server [imgprocd options...]: a private server; waits for its ready line.
# IMGPROCD_FLAGS (from the Makefile) come first, so a test's own options win.
start_server() {
    rm -f "$TMP/ready"
    mkfifo "$TMP/ready"
    # shellcheck disable=SC2086
    $IMGPROCD_WRAPPER "$IMGPROCD" --program "$PROG" --port "$PORT" --state-dir "$TMP/state" -v \
        $IMGPROCD_FLAGS "$@" \
        >"$TMP/ready" 2>>"$TMP/server.log" &
    SERVER_PID=$!
    # Blocks until the server prints its ready line (or exits: EOF).
    read -r READY <"$TMP/ready" || true
    case "$READY" in
    "imgprocd: ready"*) ;;
    *) sed "s/^/# /" "$TMP/server.log" >&2; bail "imgprocd did not start" ;;
    esac
}

# wait_log PATTERN [SECONDS] [FROM]: blocks until the server's log has a line
# matching the extended regular expression (default: 60 s at most), from line
# FROM on (default 1; log_lines + 1 is "from now on"); 0 if it came.
wait_log() {
    local rc
    coproc LOGTAIL { exec tail -n +"${3:-1}" -f "$TMP/server.log"; }
    timeout "${2:-60}" grep -m1 -qE -- "$1" <&"${LOGTAIL[0]}"
    rc=$?
    kill "$LOGTAIL_PID" 2>/dev/null
    wait "$LOGTAIL_PID" 2>/dev/null
    return $rc
}

# log_lines: how many lines the server's log has now.
log_lines() {
    wc -l <"$TMP/server.log"
}

# kill_server: SIGKILL, as a crash would; no clean-up happens.
kill_server() {
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

# stop_server: SIGTERM, then the exit status.
stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    STOP_STATUS=$?
    SERVER_PID=
    # A server that did not exit 0 shows its log (sanitizer or valgrind reports too).
    [ "$STOP_STATUS" -eq 0 ] || sed 's/^/# server: /' "$TMP/server.log" | tail -60
}

# The client, aimed at the private server.
# start_web [options]: the gateway (imgproc-web) on WPORT in front of this
# test's server, waited for by its ready line; URL is its address.
# IMGPROC_WEB_WRAPPER runs it under a tool (valgrind), as IMGPROCD_WRAPPER does the server.
WEB_PID=
start_web() {
    WPORT=${WPORT:-$((PORT + 100))}
    URL="http://127.0.0.1:$WPORT"
    mkfifo "$TMP/web.ready"
    # shellcheck disable=SC2086
    $IMGPROC_WEB_WRAPPER "$TOP/$BUILD/imgproc-web" --program "$PROG" --listen 127.0.0.1:$WPORT "$@" \
        >"$TMP/web.ready" 2>>"$TMP/web.log" &
    WEB_PID=$!
    read -r line <"$TMP/web.ready" || true
    rm -f "$TMP/web.ready"
    case "$line" in
    "imgproc-web: ready"*) ;;
    *) sed "s/^/# /" "$TMP/web.log" >&2; bail "imgproc-web did not start" ;;
    esac
}
# stop_web: SIGTERM, and its exit status in WEB_STATUS.
stop_web() {
    kill -TERM "$WEB_PID"
    wait "$WEB_PID"
    WEB_STATUS=$?
    WEB_PID=
}

# j FILE EXPR: EXPR in Python over the JSON document d in FILE ("INVALID" if none).
j() {
    python3 -c 'import json,sys
try: d = json.load(open(sys.argv[1]))
except Exception as e: print("INVALID: %s" % e); sys.exit(0)
print(eval(sys.argv[2]))' "$1" "$2"
}

cli() {
    "$IMGPROC" --program "$PROG" "$@"
}

# field NAME < JSON: one top-level field of a JSON object (task status, info...).
field() {
    python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Image facts from libvips' own tools, independent of our code.
hdr() {     # hdr FIELD FILE
    vipsheader -f "$1" "$2"
}

# make_photo FILE W H: a noisy, textured RGB image (not flat colour).
make_photo() {
    vips gaussnoise "$TMP/n1.v" "$2" "$3" --mean 128 --sigma 40 &&
    vips xyz "$TMP/xy.v" "$2" "$3" &&
    vips extract_band "$TMP/xy.v" "$TMP/x.v" 0 &&
    vips linear "$TMP/x.v" "$TMP/ramp.v" "$(awk "BEGIN{print 255/$2}")" 0 --uchar &&
    vips bandjoin "$TMP/n1.v $TMP/ramp.v $TMP/n1.v" "$TMP/rgb.v" &&
    vips copy "$TMP/rgb.v" "$1" --interpretation srgb ||
    bail "cannot make test image $1"
}

# start_kdc: a throwaway Kerberos realm IMGPROC.TEST in $TMP/kdc, its KDC on
# 127.0.0.1:KDC_PORT (PORT + 50), with the service imgproc/localhost (keys
# in $KEYTAB) and users alice, bob and carol (password: the name, then
# "pw").  Exports KRB5_CONFIG, so every Kerberos program here uses it.
KDC_PID=
start_kdc() {
    local d=$TMP/kdc
    KDC_PORT=$((PORT + 50))
    KEYTAB=$d/imgproc.keytab
    mkdir -p "$d"
    cat >"$d/krb5.conf" <<EOF
[libdefaults]
    default_realm = IMGPROC.TEST
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    IMGPROC.TEST = {
        kdc = 127.0.0.1:$KDC_PORT
    }
[domain_realm]
    localhost = IMGPROC.TEST
EOF
    cat >"$d/kdc.conf" <<EOF
[kdcdefaults]
    kdc_listen = 127.0.0.1:$KDC_PORT
    kdc_tcp_listen = 127.0.0.1:$KDC_PORT
[realms]
    IMGPROC.TEST = {
        database_name = $d/principal
        key_stash_file = $d/stash
        acl_file = $d/kadm5.acl
        max_life = 1h
    }
[logging]
    kdc = FILE:$d/kdc.log
EOF
    export KRB5_CONFIG=$d/krb5.conf KRB5_KDC_PROFILE=$d/kdc.conf
    kdb5_util create -s -r IMGPROC.TEST -P "master-$$" >/dev/null 2>&1 || bail "kdb5_util cannot make the realm"
    kadmin.local -q "addprinc -randkey imgproc/localhost" >/dev/null 2>&1 &&
        kadmin.local -q "ktadd -k $KEYTAB imgproc/localhost" >/dev/null 2>&1 || bail "kadmin.local cannot add the service"
    for u in alice bob carol; do
        kadmin.local -q "addprinc -pw ${u}pw $u" >/dev/null 2>&1 || bail "kadmin.local cannot add $u"
    done
    # -n: in the foreground, so that $! is the KDC.  It prints "starting..."
    # once its ports are bound: read from a fifo kept open (it says no more).
    mkfifo "$d/kdc.ready"
    krb5kdc -n -P "$d/kdc.pid" 2>"$d/kdc.ready" &
    KDC_PID=$!
    exec {KDC_FD}<"$d/kdc.ready"
    while read -r line <&"$KDC_FD"; do
        case "$line" in *starting*) return 0 ;; esac
        echo "# kdc: $line"
    done
    sed 's/^/# kdc: /' "$d/kdc.log" 2>/dev/null
    bail "the KDC did not start"
}

# kinit_as USER: a ticket for USER in its own cache, $TMP/kdc/USER.cc.
kinit_as() {
    echo "${1}pw" | KRB5CCNAME="FILE:$TMP/kdc/$1.cc" kinit "$1" >/dev/null ||
        bail "kinit $1 failed"
}

# Several servers on one machine, for the multi-host tests: server N on
# 127.0.0.N:PORT, with its own state folder, no rpcbind, no local socket.
# host_start N starts it and waits for its ready line; PIDS[N] is its pid.
PIDS=()
host_start() {
    local n=$1 line
    mkfifo "$TMP/ready$n"
    # shellcheck disable=SC2086
    $IMGPROCD_WRAPPER "$IMGPROCD" --program "$PROG" --port "$PORT" --listen "127.0.0.$n" \
        --no-rpcbind --local-socket none --state-dir "$TMP/state$n" $IMGPROCD_FLAGS \
        >"$TMP/ready$n" 2>>"$TMP/host$n.log" &
    PIDS[$n]=$!
    read -r line <"$TMP/ready$n" || true
    case "$line" in
    "imgprocd: ready"*) ;;
    *) sed "s/^/# /" "$TMP/host$n.log" >&2; bail "server $n did not start" ;;
    esac
}
# host_calls N PROC: how many PROC calls server N has answered (its STATS).
host_calls() {
    "$IMGPROC" --program "$PROG" -H "127.0.0.$1" -p "$PORT" --json stats |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(p["calls"] for p in d["procedures"] if p["name"] == sys.argv[1]))' "$2"
}
