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
    wait_file "$TMP/server.log" "$1" "${2:-60}" "${3:-1}"
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

# ---- A cluster on this machine (tests/cluster, the benchmark): a throwaway
# PostgreSQL and imgprocd hosts, each in a network namespace of its own, on a
# bridge in the root namespace.  As root.  The bridge holds CL_NET.1 (the
# database and the clients live there); host N is CL_NET.1N in namespace
# CL_NS N, behind the veth CL_VETH N, with its own rpcbind (in a mount
# namespace whose /run is private: libtirpc registers through
# /run/rpcbind.sock, which would otherwise be the root namespace's rpcbind)
# and its own hostname.  One cluster per machine at a time (a lock says so).
# A test traps cluster_cleanup before lib.sh's cleanup:
#     trap 'cluster_cleanup; cleanup' EXIT
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PG_PORT:-47210}
CL_NET=${CL_NET:-10.231.0}
CL_BRIDGE=${CL_BRIDGE:-ipcbr0}
CL_NS=${CL_NS:-ipc-h}
CL_VETH=${CL_VETH:-ipcv}
CL_PORT=${CL_PORT:-47220}
PG_HOST=${PG_HOST:-$CL_NET.1}
PG_DIR=
CL_DIR=
CL_HOSTS=0
CL_LOCKED=
PG_LOCK_PORT=
CL_PIDS=()
CL_RPCBIND=()

# cluster_skip_unless_able: TAP's "1..0 # SKIP" and exit 0 unless this can
# run here (root, ip netns, nsenter, unshare, PostgreSQL 15).
cluster_skip_unless_able() {
    local why=
    if [ "$(id -u)" -ne 0 ]; then why="needs root (network namespaces, a bridge)"
    elif ! ip netns list >/dev/null 2>&1; then why="'ip netns' is unavailable"
    elif ! command -v nsenter >/dev/null || ! command -v unshare >/dev/null; then why="nsenter/unshare (util-linux) are missing"
    elif [ ! -x "$PG_BIN/initdb" ]; then why="PostgreSQL 15 is missing ($PG_BIN/initdb; apt-get install postgresql-15)"
    fi
    [ -z "$why" ] && return 0
    echo "1..0 # SKIP $why"
    exit 0
}

# skip REASON: one test counted as passed, marked SKIP.
skip() {
    NTEST=$((NTEST + 1))
    echo "ok $NTEST # SKIP $*"
}

# wait_file FILE PATTERN [SECONDS] [FROM]: as wait_log, for any file (FILE
# may not exist yet).  FROM is where the lines already there are looked at
# from; anything appended later is looked at whole (tail -f): PATTERN '.'
# with FROM (lines now + 1) waits for one more line.
wait_file() {
    local rc
    coproc FILETAIL { exec tail -F -n +"${4:-1}" "$1" 2>/dev/null; }
    timeout "${3:-60}" grep -m1 -qE -- "$2" <&"${FILETAIL[0]}"
    rc=$?
    kill "$FILETAIL_PID" 2>/dev/null
    wait "$FILETAIL_PID" 2>/dev/null
    return $rc
}

# cluster_nolocks COMMAND...: runs it without this run's lock descriptors
# (the test slot's, the cluster's, the database port's), so that what it
# leaves running after a kill -9 of the test holds none of them: the next
# run takes them, and removes the leftovers.
# It execs COMMAND: call it in a subshell, or with & (then $! is COMMAND's).
cluster_nolocks() {
    local fd
    for fd in "${SLOT_FD:-}" "${CL_LOCK_FD:-}" "${PG_LOCK_FD:-}"; do
        [ -n "$fd" ] && eval "exec $fd>&-"
    done
    exec "$@"
}

# pg_as PROGRAM ARGS...: one of PostgreSQL's programs, as nobody, in PG_DIR.
pg_as() {
    local prog=$1
    shift
    (cd "$PG_DIR" && cluster_nolocks runuser -u nobody -- "$PG_BIN/$prog" "$@")
}

# pg_start: a throwaway PostgreSQL 15 in a new folder (PG_DIR, owned by
# nobody, who runs it: initdb refuses root), listening on PG_HOST:PG_PORT
# (the bridge's address: netns_up first, or PG_HOST=127.0.0.1) and on a
# socket in PG_DIR/sock, its superuser imgproc and its database imgproc,
# trusted from CL_NET.0/24 and this machine.  The server's keepalives give
# up on a silent client within seconds, so a cut-off host's locks are let
# go.  PG_CONF_EXTRA: more postgresql.conf lines.  Returns once it accepts
# connections (pg_ctl -w).
pg_start() {
    local d
    [ -x "$PG_BIN/initdb" ] || bail "PostgreSQL 15 is missing ($PG_BIN/initdb): apt-get install postgresql-15"
    # One database per port at a time; holding the port's lock, any other of
    # ours on it is a leftover of a run killed before it could clean up.
    if [ "$PG_LOCK_PORT" != "$PG_PORT" ]; then    # not held yet (a second pg_start keeps it)
        [ -n "${PG_LOCK_FD:-}" ] && exec {PG_LOCK_FD}>&-
        exec {PG_LOCK_FD}>"/tmp/imgproc-pg-$PG_PORT.lock"
        flock -n "$PG_LOCK_FD" || bail "another run's PostgreSQL holds port $PG_PORT"
        PG_LOCK_PORT=$PG_PORT
    fi
    for d in /tmp/imgproc-pg.*; do
        [ "$(cat "$d/port" 2>/dev/null)" = "$PG_PORT" ] || continue
        echo "# removing a PostgreSQL left behind on port $PG_PORT: $d"
        [ -f "$d/data/postmaster.pid" ] &&
            (cd / && cluster_nolocks runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$d/data" -m immediate -w stop) >/dev/null 2>&1
        rm -rf "$d"
    done
    # Under /tmp, not TMPDIR: nobody must reach it.
    PG_DIR=$(mktemp -d /tmp/imgproc-pg.XXXXXX) || bail "mktemp failed"
    echo "$PG_PORT" >"$PG_DIR/port"
    chown nobody "$PG_DIR"
    pg_as initdb -D "$PG_DIR/data" -U imgproc --auth=trust -E UTF8 --no-locale -N \
        >"$PG_DIR/initdb.log" 2>&1 || { sed 's/^/# initdb: /' "$PG_DIR/initdb.log"; bail "initdb failed"; }
    mkdir "$PG_DIR/sock" && chown nobody "$PG_DIR/sock"
    cat >>"$PG_DIR/data/postgresql.conf" <<PGCONF
port = $PG_PORT
listen_addresses = '$PG_HOST'
unix_socket_directories = '$PG_DIR/sock'
tcp_keepalives_idle = 2
tcp_keepalives_interval = 1
tcp_keepalives_count = 2
${PG_CONF_EXTRA:-}
PGCONF
    echo "host all all $CL_NET.0/24 trust" >>"$PG_DIR/data/pg_hba.conf"
    pg_as pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null ||
        { sed 's/^/# postgres: /' "$PG_DIR/server.log"; bail "PostgreSQL did not start"; }
    "$PG_BIN/createdb" -h "$PG_DIR/sock" -p "$PG_PORT" -U imgproc imgproc ||
        bail "createdb imgproc failed"
}

# pg_restart [fast|immediate|smart]: pg_ctl restart in that mode (fast by
# default); returns once it accepts connections again.
pg_restart() {
    pg_as pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/server.log" -m "${1:-fast}" -w -t 60 restart >/dev/null ||
        { tail -20 "$PG_DIR/server.log" | sed 's/^/# postgres: /'; bail "PostgreSQL did not restart (-m ${1:-fast})"; }
}

# pg_stop: stops it (fast) and removes its folder.
pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    [ -f "$PG_DIR/data/postmaster.pid" ] &&
        pg_as pg_ctl -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1
    rm -rf "$PG_DIR"
    PG_DIR=
}

# pg_url [QUERY]: the libpq URL of the database, with ?QUERY when given.
pg_url() {
    echo "postgres://imgproc@$PG_HOST:$PG_PORT/imgproc${1:+?$1}"
}

# pg_sql SQL: runs it on the database (over its socket); rows on stdout, |-separated.
pg_sql() {
    psql -h "$PG_DIR/sock" -p "$PG_PORT" -U imgproc -d imgproc -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# netns_up [N]: the bridge, and N (3) namespaces, each with its rpcbind.
# Leftovers of an earlier run that could not clean up are removed first.
netns_up() {
    local n=${1:-3} i ns
    if [ -z "$CL_LOCKED" ]; then
        exec {CL_LOCK_FD}>"/tmp/imgproc-cluster-$CL_BRIDGE.lock"
        flock -n "$CL_LOCK_FD" || bail "another cluster ($CL_BRIDGE, ${CL_NS}N) is in use on this machine"
        CL_LOCKED=1
    fi
    netns_down
    rm -rf "${TMPDIR:-/tmp}/imgproc-cluster-$CL_BRIDGE".*      # a killed run's
    CL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-cluster-$CL_BRIDGE.XXXXXX") || bail "mktemp failed"
    ip link add "$CL_BRIDGE" type bridge &&
        ip addr add "$CL_NET.1/24" dev "$CL_BRIDGE" &&
        ip link set "$CL_BRIDGE" up || bail "cannot make the bridge $CL_BRIDGE"
    for i in $(seq 1 "$n"); do
        ns=$CL_NS$i
        ip netns add "$ns" &&
            ip link add "$CL_VETH$i" type veth peer name eth0 netns "$ns" &&
            ip link set "$CL_VETH$i" master "$CL_BRIDGE" up &&
            ip -n "$ns" addr add "$CL_NET.1$i/24" dev eth0 &&
            ip -n "$ns" link set eth0 up &&
            ip -n "$ns" link set lo up || bail "cannot make the namespace $ns"
        # Without -f, rpcbind returns once its sockets are bound (it forks
        # into the background): that is the event waited for.  It is then
        # the only process in the namespace.
        (cluster_nolocks ip netns exec "$ns" unshare -m -u --propagation private \
            sh -c "hostname $ns && mount -t tmpfs tmpfs /run && exec rpcbind -w") ||
            bail "rpcbind did not start in $ns"
        CL_RPCBIND[$i]=$(ip netns pids "$ns")
        case "${CL_RPCBIND[$i]}" in
        *[!0-9]*|"") bail "namespace $ns: expected rpcbind alone, found pids '${CL_RPCBIND[$i]}'" ;;
        esac
        CL_HOSTS=$i
    done
}

# netns_down: every namespace CL_NS* with what runs in it (killed), the
# veths, the bridge.  What it removes is only ever this harness's: the names
# are its own.
netns_down() {
    local ns i p
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
        case "$ns" in "$CL_NS"[0-9]*) ;; *) continue ;; esac
        i=${ns#"$CL_NS"}
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip link del "$CL_VETH$i" 2>/dev/null
        ip netns del "$ns"
    done
    for i in $(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | sed 's/@.*//'); do
        case "$i" in "$CL_VETH"[0-9]*) ip link del "$i" 2>/dev/null ;; esac
    done
    ip link show "$CL_BRIDGE" >/dev/null 2>&1 && ip link del "$CL_BRIDGE"
    CL_HOSTS=0
    CL_RPCBIND=()
}

# cluster_host_start N [imgprocd options...]: imgprocd on host N, in the
# network, mount and UTS namespaces of its rpcbind (so it registers there),
# on CL_NET.1N:CL_PORT, program PROG, state in CL_DIR/hN/state, its log
# CL_DIR/hN.log (appended to).  Returns once it printed its ready line;
# CL_PIDS[N] is its pid (nsenter execs it).
cluster_host_start() {
    local n=$1 d=$CL_DIR/h$1 line
    shift
    mkdir -p "$d"
    rm -f "$d/ready"
    mkfifo "$d/ready"
    # shellcheck disable=SC2086
    cluster_nolocks nsenter -t "${CL_RPCBIND[$n]}" -m -n -u -- $IMGPROCD_WRAPPER "$IMGPROCD" --program "$PROG" \
        --port "$CL_PORT" --listen "$CL_NET.1$n" --local-socket none --state-dir "$d/state" -v \
        $IMGPROCD_FLAGS "$@" >"$d/ready" 2>>"$CL_DIR/h$n.log" &
    CL_PIDS[$n]=$!
    read -r line <"$d/ready" || true
    case "$line" in
    "imgprocd: ready"*) ;;
    *) tail -30 "$CL_DIR/h$n.log" | sed "s/^/# h$n: /"; bail "imgprocd on host $n did not start" ;;
    esac
}

# cluster_host_stop N: SIGTERM, and its exit status in STOP_STATUS.
cluster_host_stop() {
    kill -TERM "${CL_PIDS[$1]}"
    wait "${CL_PIDS[$1]}"
    STOP_STATUS=$?
    CL_PIDS[$1]=
}

# cluster_host_kill N: SIGKILL, as a crash would.
cluster_host_kill() {
    kill -KILL "${CL_PIDS[$1]}"
    wait "${CL_PIDS[$1]}" 2>/dev/null
    CL_PIDS[$1]=
}

# cluster_log N: host N's log file; cluster_log_lines N: its lines now;
# cluster_wait_log N PATTERN [SECONDS] [FROM]: wait_log for host N.
cluster_log() { echo "$CL_DIR/h$1.log"; }
cluster_log_lines() { wc -l <"$CL_DIR/h$1.log"; }
cluster_wait_log() { wait_file "$CL_DIR/h$1.log" "$2" "${3:-60}" "${4:-1}"; }

# cluster_cli N ARGS...: the client in the root namespace, aimed at host N by
# its address (through that host's rpcbind).
cluster_cli() {
    local n=$1
    shift
    "$IMGPROC" --program "$PROG" -H "$CL_NET.1$n" "$@"
}

# cut_link N / restore_link N: host N's veth down (its own end stays up:
# it sees silence, not an error) and up again.
cut_link() { ip link set "$CL_VETH$1" down; }
restore_link() { ip link set "$CL_VETH$1" up; }

# cluster_cleanup: the hosts (killed), the database, the namespaces, the
# bridge, the folders.  Safe to call twice, and when nothing was started.
cluster_cleanup() {
    local p
    for p in "${CL_PIDS[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
    for p in "${CL_PIDS[@]}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    CL_PIDS=()
    pg_stop
    [ -n "$CL_LOCKED" ] && netns_down
    [ -n "$CL_DIR" ] && rm -rf "$CL_DIR"
    CL_DIR=
}
