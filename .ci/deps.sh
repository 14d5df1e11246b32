#!/bin/sh
# Installs the Debian packages imgproc needs to build, test and demo, when missing.
# As root it runs apt-get; otherwise it prints the command to run.
# An argument names an extra group, for the targets that need more:
#   package    make deb, check-package: debhelper, lintian
#   container  make check-container: podman and what builds its base image
#   interop    make check-interop: remotetea's jrpcgen and a JDK
set -e
group=${1:-}
PKGS="build-essential pkg-config libtirpc-dev rpcsvc-proto rpcbind libvips-dev libvips-tools libcmocka-dev libsqlite3-dev sqlite3 libssl-dev libsystemd-dev perl libimage-exiftool-perl"
# make fuzz: clang; its sanitizer and libFuzzer runtimes (libclang-rt-dev: clang
# only recommends them, and recommends are not installed); llvm-symbolizer
# (llvm) for readable stacks in the reports.
PKGS="$PKGS clang libclang-rt-dev llvm"
# Tests: ip (iproute2) makes the network namespaces some use; script
# (bsdutils) gives the client a terminal for its progress bars; mandoc and
# groff lint the man pages; systemd-analyze verifies the units.
PKGS="$PKGS iproute2 bsdutils mandoc groff-base systemd"
# Kerberos: the GSS-API headers (RPCSEC_GSS), and a throwaway KDC for the
# tests (krb5kdc and kdb5_util from krb5-kdc; kadmin.local, on Debian, from
# krb5-admin-server; kinit from krb5-user).
PKGS="$PKGS libkrb5-dev krb5-kdc krb5-admin-server krb5-user"
# One address before several hosts: HAProxy's TCP front (its test).
PKGS="$PKGS haproxy"
# The shared store (--store postgres://...): libpq to build; a throwaway
# PostgreSQL 15 (initdb, pg_ctl, psql) for make check-cluster's hosts.
PKGS="$PKGS libpq-dev postgresql-15"
# The web gateway: civetweb serves HTTP, xmlrpc-c answers XML-RPC; its tests
# talk to it with curl and Python's xmlrpc.client.
PKGS="$PKGS libcivetweb-dev libxmlrpc-core-c3-dev curl"
# The page's test drives a real browser (headless chromium through
# chromedriver and selenium); the WebSocket test speaks with python3-websockets.
PKGS="$PKGS chromium chromium-driver python3-selenium python3-websockets"
case "$group" in
"") ;;
package)   PKGS="debhelper fakeroot lintian man-db" ;;
container) PKGS="podman runc mmdebstrap uidmap podman-compose" ;;
interop)   PKGS="remotetea default-jdk-headless" ;;
*) echo "deps.sh: unknown group '$group' (package, container, interop)" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# The tests read JSON with python3; any python3 on the PATH will do.
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "imgproc: missing packages:$missing" >&2
    echo "imgproc: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "imgproc: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# The tests make their own PostgreSQL clusters: the package's postinst need
# not create and start a "main" one on port 5432.
case "$missing" in
*postgresql-15*)
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/imgproc.conf ;;
esac
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
