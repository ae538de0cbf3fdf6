#!/bin/sh
# The real peers the interop tests run against: Debian's libcoap clients
# (libcoap3-bin). Installed here when running as root with apt-get;
# otherwise one line says how, and the status is non-zero, so a missing
# peer fails `make test` instead of skipping tests. aiocoap-client comes
# with the pip test extra (the venv), not from here.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

have coap-client-notls && exit 0
if [ "$(id -u)" -eq 0 ] && have apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    # The package lists of a fresh image may be empty: update only if needed.
    apt-get install -y -q libcoap3-bin >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q libcoap3-bin >/dev/null; }
    have coap-client-notls && exit 0
fi
echo "make test needs coap-client-notls: install Debian's libcoap3-bin (sudo apt-get install libcoap3-bin)" >&2
exit 1
