#!/bin/bash
# run.sh - make check-container: builds the container image (dist/container/Dockerfile)
# with podman and brings up dist/container/compose.yaml, whose client service calls
# imgprocd through rpcbind and grays a real photograph.  TAP on stdout.
#
# As root (rootful podman: the host's own cgroups and overlayfs), offline but for
# the Debian mirror.  Writes nothing into /etc: podman reads a containers.conf of
# ours ($CONF_DIR), which also keeps the networks' CNI files.  Keeps, for the next
# run: the base image (docker.io/library/debian:bookworm, made by mmdebstrap from
# this machine's apt sources, as the Dockerfile's FROM expects) and the build cache.
# `podman rmi debian:bookworm` makes the next run build the base afresh.
#
#   bash tests/container/run.sh         (from the repository's root; make check-container)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD

IMAGE=imgproc:test
BASE=docker.io/library/debian:bookworm
PROJECT=imgproc-check-$$            # containers PROJECT_SERVICE_1, network PROJECT_default
COMPOSE_FILE=dist/container/compose.yaml
CORPUS=${IMGPROC_CORPUS:-${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/corpus}
PHOTO=$CORPUS/jpeg-photo-ladybird.jpg
# Shared by every run (one CNI file per network: two runs at once must see each
# other's networks, or both would take the same bridge and subnet).
CONF_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/imgproc/podman
WORK=$(mktemp -d "${TMPDIR:-/tmp}/imgproc-container.XXXXXX")
NTEST=0
NFAIL=0
UP=0

comment() { sed 's/^/#   /'; }
ok() {      # ok STATUS DESCRIPTION
    NTEST=$((NTEST + 1))
    if [ "$1" -eq 0 ]; then echo "ok $NTEST - $2"; else echo "not ok $NTEST - $2"; NFAIL=$((NFAIL + 1)); fi
}
is() {      # is ACTUAL EXPECTED DESCRIPTION
    NTEST=$((NTEST + 1))
    if [ "$1" = "$2" ]; then echo "ok $NTEST - $3"; return; fi
    echo "not ok $NTEST - $3"
    printf "got:      '%s'\nexpected: '%s'\n" "$1" "$2" | comment
    NFAIL=$((NFAIL + 1))
}
bail() { echo "Bail out! $*"; exit 1; }

# The compose file's settings: our image, a free port on the loopback, our folder.
COMPOSE=(env IMGPROC_IMAGE=$IMAGE IMGPROC_WEB_PUBLISH=127.0.0.1: IMGPROC_DATA=$WORK/data
         podman-compose --podman-path "$CONF_DIR/bin/podman" -p "$PROJECT" -f "$COMPOSE_FILE")

cleanup() {
    if [ "$UP" -eq 1 ]; then
        "${COMPOSE[@]}" down -v >"$WORK/down.log" 2>&1
        # What a failed down leaves, and the network podman-compose 1.0.3 never removes.
        ids=$(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT")
        [ -n "$ids" ] && podman rm -f -t 0 --depend $ids >/dev/null 2>&1
        podman volume rm -f "${PROJECT}_imgprocd-state" >/dev/null 2>&1
        podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || bail "run as root (rootful podman)"
for tool in podman podman-compose mmdebstrap runc python3; do
    command -v "$tool" >/dev/null || bail "'$tool' is missing: sh .ci/deps.sh container"
done
if [ ! -f "$PHOTO" ]; then
    bash tests/corpus/fetch.sh --quiet >/dev/null || bail "no $PHOTO: run 'make corpus'"
fi
[ -f "$PHOTO" ] || bail "no $PHOTO in the corpus"

# ---- podman, configured for these machines without touching /etc.  runc: crun
# refuses the hybrid cgroup v1/v2 layout; cgroupfs and a file for the events:
# no systemd to ask; the ulimits podman sets by default are over our hard limit,
# which we may not raise.
mkdir -p "$CONF_DIR/cni" "$CONF_DIR/bin"
nofile=$(ulimit -Hn)
cat >"$CONF_DIR/containers.conf.$$" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_config_dir = "$CONF_DIR/cni"
EOF
mv "$CONF_DIR/containers.conf.$$" "$CONF_DIR/containers.conf"
export CONTAINERS_CONF=$CONF_DIR/containers.conf

# podman-compose 1.0.3 (bookworm's) passes network_mode "service:rpcbind" to
# podman as it is, and adds --net PROJECT_default and --network-alias, which
# podman refuses beside a shared namespace.  This wrapper gives podman what
# later podman-composes (and docker compose) do: --network container:PROJECT_rpcbind_1.
cat >"$CONF_DIR/bin/podman.$$" <<EOF
#!/bin/bash
# podman for podman-compose 1.0.3: network_mode service:S (written by tests/container/run.sh).
real=$(command -v podman)
EOF
cat >>"$CONF_DIR/bin/podman.$$" <<'EOF'
case "${1:-}" in create|run) ;; *) exec "$real" "$@" ;; esac
project= shared=
for a in "$@"; do
    case "$a" in io.podman.compose.project=*) project=${a#*=} ;; esac
done
args=()
for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = --network ]; then
        j=$((i + 1))
        case "${!j}" in service:*) shared=container:${project}_${!j#service:}_1; i=$j; continue ;; esac
    fi
    args+=("${!i}")
done
[ -z "$shared" ] && exec "$real" "$@"
out=("${args[0]}" --network "$shared")
for ((i = 1; i < ${#args[@]}; i++)); do
    case "${args[i]}" in --net|--network-alias) i=$((i + 1)); continue ;; esac
    out+=("${args[i]}")
done
exec "$real" "${out[@]}"
EOF
chmod 755 "$CONF_DIR/bin/podman.$$"
mv "$CONF_DIR/bin/podman.$$" "$CONF_DIR/bin/podman"

# ---- the base image, once: what docker.io/library/debian:bookworm is made of
# (minbase), from this machine's own mirror.
start=$SECONDS
if podman image exists "$BASE"; then
    echo "# base image $BASE: cached"
else
    sources=()
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qE '^Suites:.*\bbookworm' "$f" && sources+=("$f")
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        while IFS= read -r line; do sources+=("$line"); done \
            < <(grep -E '^deb[[:space:]].*[[:space:]]bookworm([[:space:]]|$)' "$f")
    done
    echo "# base image $BASE: mmdebstrap from ${sources[*]:-deb.debian.org}"
    mmdebstrap --quiet --variant=minbase bookworm - "${sources[@]}" 2>"$WORK/mmdebstrap.log" |
        podman import --quiet --change 'CMD ["bash"]' - "$BASE" >/dev/null 2>"$WORK/import.log"
    rc=$?
    [ $rc -eq 0 ] || { comment <"$WORK/mmdebstrap.log"; comment <"$WORK/import.log"; }
    ok $rc "base image $BASE made ($((SECONDS - start)) s)"
    [ $rc -eq 0 ] || bail "no base image"
fi

# ---- the image.  --jobs 2: the runtime stage's packages install while the build
# stage's do.
start=$SECONDS
podman build --pull=never --jobs 2 -f dist/container/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -n 40 "$WORK/build.log" | comment
ok $rc "podman build -f dist/container/Dockerfile -t $IMAGE ($((SECONDS - start)) s)"
[ $rc -eq 0 ] || bail "no image"
bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "# image size: $((bytes / 1000000)) MB ($bytes bytes)"

is "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" imgproc "the image runs as imgproc, not root"
missing=$(podman run --rm --user root "$IMAGE" sh -c \
    'ldd /usr/sbin/imgprocd /usr/sbin/imgproc-web /usr/bin/imgproc /usr/lib/*/vips-modules-*/*.so' 2>&1 |
    grep 'not found')
is "$missing" "" "every library the programs and libvips' modules load is in the image"

# ---- the stack: rpcbind, imgprocd, imgproc-web and the client, which prints TAP
# and exits with its status.
mkdir -p "$WORK/data"
cp "$PHOTO" "$WORK/data/photo.jpg"
UP=1
start=$SECONDS
timeout -k 10 600 "${COMPOSE[@]}" up --exit-code-from client >"$WORK/up.log" 2>&1
rc=$?
ok $rc "podman-compose up --exit-code-from client: the client's checks pass ($((SECONDS - start)) s)"
podman logs "${PROJECT}_client_1" >"$WORK/client.log" 2>&1
comment <"$WORK/client.log"
if [ $rc -ne 0 ]; then
    echo "# podman-compose up:"
    tail -n 30 "$WORK/up.log" | comment
    for s in rpcbind imgprocd imgproc-web; do
        echo "# $s:"
        podman logs "${PROJECT}_${s}_1" 2>&1 | tail -n 10 | comment
    done
fi
is "$(grep -c '^ok [0-9]' "$WORK/client.log")/$(grep -c '^not ok' "$WORK/client.log")" \
    "$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$WORK/client.log")/0" "the client ran all its checks: ok/not ok"
is "$(grep -c '^1\.\.[1-9]' "$WORK/client.log")" 1 "the client printed its plan (it ran to the end)"

is "$(podman exec "${PROJECT}_imgprocd_1" id -un 2>&1)" imgproc "imgprocd runs as imgproc"

# The result, read on the host by a JPEG parser of our own, not by the server.
jpeg_dims() {   # jpeg_dims FILE: WIDTHxHEIGHT COMPONENTS, from the frame header
    python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
i = 2 if d[:2] == b"\xff\xd8" else len(d)
while i + 4 <= len(d) and d[i] == 0xFF:
    m = d[i + 1]
    if m == 0xFF: i += 1; continue
    if m == 0x01 or 0xD0 <= m <= 0xD8: i += 2; continue
    if m in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
        h, w, n = struct.unpack(">HHB", d[i + 5:i + 10])
        print(f"{w}x{h} {n}"); break
    i += 2 + struct.unpack(">H", d[i + 2:i + 4])[0]
EOF
}
in=$(jpeg_dims "$WORK/data/photo.jpg")
is "$(jpeg_dims "$WORK/data/gray.jpg" 2>&1)" "${in% *} 1" \
    "gray.jpg, read on the host: the photo's ${in% *}, one component"

# imgproc-web through the port compose publishes on the host's loopback.
addr=$(podman port "${PROJECT}_rpcbind_1" 8080/tcp 2>/dev/null)
web=$(python3 - "$addr" <<'EOF' 2>&1
import json, sys, urllib.request
r = urllib.request.urlopen(f"http://{sys.argv[1]}/v1/info", timeout=30)
ops = [o["name"] for o in json.load(r)["operations"]]
print(r.status, "grayscale" in ops)
EOF
)
is "$web" "200 True" "imgproc-web answers GET /v1/info on the published port ($addr)"

echo "1..$NTEST"
[ "$NFAIL" -eq 0 ]
