#!/bin/sh
# The real peers the interop tests run against: Debian's libcoap clients
# (libcoap3-bin: coap-client-notls, and coap-client-openssl and
# coap-client-gnutls for DTLS) and the openssl command line (the
# certificate commands of ThingsBoard's guide), and PostgreSQL's server
# binaries (Debian's postgresql: the store tests initdb a throw-away
# cluster, tests/pgcluster.py). Installed here when running
# as root with apt-get; otherwise one line says how, and the status is
# non-zero, so a missing peer fails `make test` instead of skipping tests.
# aiocoap-client comes with the pip test extra (the venv), not from here.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }
# Debian keeps initdb and pg_ctl off the PATH, under /usr/lib/postgresql/<version>/bin.
have_postgres() { have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
all() {
    have coap-client-notls && have coap-client-openssl && have coap-client-gnutls && have openssl &&
        have_postgres
}

all && exit 0
if [ "$(id -u)" -eq 0 ] && have apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    # The package lists of a fresh image may be empty: update only if needed.
    packages="libcoap3-bin openssl postgresql"
    # shellcheck disable=SC2086
    apt-get install -y -q $packages >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q $packages >/dev/null; }
    all && exit 0
fi
for client in coap-client-notls coap-client-openssl coap-client-gnutls; do
    have "$client" ||
        { echo "make test needs $client: install Debian's libcoap3-bin (sudo apt-get install libcoap3-bin)" >&2; exit 1; }
done
have openssl ||
    { echo "make test needs openssl: install Debian's openssl (sudo apt-get install openssl)" >&2; exit 1; }
echo "make test needs PostgreSQL's initdb and pg_ctl: install Debian's postgresql (sudo apt-get install postgresql)" >&2
exit 1
