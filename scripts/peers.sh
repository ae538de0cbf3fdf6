#!/bin/sh
# The real peers the interop tests run against: Debian's libcoap clients
# (libcoap3-bin: coap-client-notls, and coap-client-openssl and
# coap-client-gnutls for DTLS) and the openssl command line (the
# certificate commands of ThingsBoard's guide). Installed here when running
# as root with apt-get; otherwise one line says how, and the status is
# non-zero, so a missing peer fails `make test` instead of skipping tests.
# aiocoap-client comes with the pip test extra (the venv), not from here.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }
all() { have coap-client-notls && have coap-client-openssl && have coap-client-gnutls && have openssl; }

all && exit 0
if [ "$(id -u)" -eq 0 ] && have apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    # The package lists of a fresh image may be empty: update only if needed.
    apt-get install -y -q libcoap3-bin openssl >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q libcoap3-bin openssl >/dev/null; }
    all && exit 0
fi
for client in coap-client-notls coap-client-openssl coap-client-gnutls; do
    have "$client" ||
        { echo "make test needs $client: install Debian's libcoap3-bin (sudo apt-get install libcoap3-bin)" >&2; exit 1; }
done
echo "make test needs openssl: install Debian's openssl (sudo apt-get install openssl)" >&2
exit 1
