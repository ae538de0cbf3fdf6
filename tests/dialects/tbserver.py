"""
A ThingsBoard-dialect server for interop tests: the engine with the dialect
plugins (found by twisted.plugin) over the SQLite service layer in a data
directory, on UDP port 0 of 127.0.0.1.  Prints the bound port as the first
line on stdout and runs the real reactor until killed.

Seeded: device C{dev} with token C{A1_TEST_TOKEN}; profile C{sensors} with
provisioning key/secret C{prov-key}/C{prov-secret} (create new).  SIGUSR1
sets the shared attribute C{{"led": <count>}} of C{dev} (to drive Observe).

    python -m tests.dialects.tbserver DATA_DIR
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from gateway.coap.resource import Resource
from gateway.coap.server import CoAPServer
from gateway.dialect import install_dialects
from gateway.service.build import Services, open_services
from gateway.service.errors import Conflict
from gateway.service.model import AttributeScope, Profile, ProvisionStrategy

TOKEN = "A1_TEST_TOKEN"


async def _seed(services: Services) -> str:
    try:
        await services.registry.create_profile(
            Profile(
                "sensors",
                provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
                provision_key="prov-key",
                provision_secret="prov-secret",
            )
        )
    except Conflict:
        pass
    device = services.credentials.authenticate_token(TOKEN)
    if device is None:
        device = (await services.registry.create_device("dev", access_token=TOKEN)).device
    return device.id


def main(argv: list[str]) -> None:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    data_dir = argv[1]
    r: Any = reactor

    async def start() -> None:
        services = await open_services(r, data_dir)
        device_id = await _seed(services)
        root = Resource()
        install_dialects(root, services, r, ["thingsboard"])
        server = CoAPServer(root, r)
        port = r.listenUDP(0, server, interface="127.0.0.1")
        count = 0

        def push() -> None:
            nonlocal count
            count += 1
            services.attributes.set_attributes(device_id, AttributeScope.SHARED, {"led": count})

        signal.signal(signal.SIGUSR1, lambda *_: r.callFromThread(push))
        print(port.getHost().port, flush=True)

    def failed(failure: Any) -> None:
        print(f"failed: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        r.stop()

    Deferred.fromCoroutine(start()).addErrback(failed)
    r.run()


if __name__ == "__main__":
    main(sys.argv)
