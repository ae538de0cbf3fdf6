# -*- test-case-name: tests.api.test_commands -*-
"""
Drogue's command endpoint (reference A.3):
C{POST /api/command/v1alpha1/apps/{application}/devices/{device}?command=NAME}.

The body is the command's payload, of any content type; it goes through the
RPC queue as a one-way RPC named C{NAME} whose C{params} is the payload as
text (so a device gets back exactly the bytes sent; a body that is not
UTF-8 is a 400) and whose C{content_type} is the request's Content-Type,
passed on to the device as its Content-Format (Drogue sends none).  An
unknown or disabled device is a 406, as in Drogue.
The answer is 202 with the queued RPC.
"""

from __future__ import annotations

from gateway.api.jsonio import ApiError
from gateway.api.router import Call, Param, RawBody, Reply, Route
from gateway.api.rpc import rpc_json
from gateway.api.schemas import ref
from gateway.domain.errors import NotFound
from gateway.service.build import Services

__all__ = ["command_routes"]

PATH = "/api/command/v1alpha1/apps/{application}/devices/{device}"


def command_routes(services: Services) -> list[Route]:
    registry, rpc = services.registry, services.rpc

    async def send(call: Call) -> Reply:
        command = call.query.get("command")
        if not command:
            raise ApiError(400, "missing query parameter 'command'")
        body = call.body if isinstance(call.body, RawBody) else RawBody(b"")
        try:
            payload = body.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the command payload must be UTF-8") from None
        try:
            device = await registry.find_device(call.params["device"], call.params["application"])
        except NotFound:
            raise ApiError(406, "unknown device") from None
        if not device.enabled:
            raise ApiError(406, "the device is disabled")
        queued = await rpc.enqueue(
            device.id, command, payload, oneway=True, content_type=body.content_type
        )
        return Reply(202, rpc_json(queued))

    return [
        Route(
            "POST", PATH, send, "Send a command to a device (Drogue's command endpoint)",
            "rpc", status=202, query=(Param("command", "The command's name.", required=True),),
            request={"type": "string", "format": "binary"}, response=ref("Rpc"),
            raw_body=True,
        ),
    ]
