# -*- test-case-name: tests.api.test_rpc -*-
"""
Routes for server-side RPCs and a device's reachability.

C{POST /api/v1/devices/{id}/rpc} with C{{"method", "params", "timeout",
"oneway", "expirationTime"}} (ThingsBoard's names; C{timeout} in ms,
C{expirationTime} in ms since the epoch) queues an RPC.  By default the
call waits: a two-way RPC answers 200 with the device's reply as the body
(ThingsBoard's C{/api/rpc/twoway}), a one-way one 200 with the RPC once the
device acknowledged it; an RPC that ends otherwise is 504 (TIMEOUT,
EXPIRED) or 502 (FAILED) with the reason.  If it has not been sent within
C{timeout} (the device sleeps) the answer is 202 with the RPC, as with
C{?wait=false} at once: poll C{GET .../rpc/{rpcId}}.

A full queue is 409, a full outbox 503 with Retry-After.
"""

from __future__ import annotations

from typing import Any, Optional

from gateway.api.jsonio import ApiError, expect_object, optional_int, require_str
from gateway.api.router import Call, Param, Reply, Route
from gateway.api.schemas import ref
from gateway.domain.model import Rpc, RpcState
from gateway.service.build import Services
from gateway.service.scheduler import Reachability

__all__ = ["reachability_json", "rpc_json", "rpc_routes"]

BASE = "/api/v1/devices/{id}/rpc"

#: The status of a waited-for RPC that ended without success.
_ENDED = {RpcState.TIMEOUT: 504, RpcState.EXPIRED: 504, RpcState.FAILED: 502}


def rpc_json(rpc: Rpc) -> dict[str, Any]:
    return {
        "id": rpc.id,
        "method": rpc.method,
        "params": rpc.params,
        "oneway": rpc.oneway,
        "timeout": rpc.timeout_ms,
        "expires_at": rpc.expires_at,
        "created": rpc.created,
        "updated": rpc.updated,
        "sent_at": rpc.sent_at,
        "state": rpc.state.value,
        "retries": rpc.retries,
        "response": rpc.response,
        "error": rpc.error,
        "content_type": rpc.content_type,
    }


def reachability_json(reach: Reachability) -> dict[str, Any]:
    return {
        "power_mode": reach.mode.value,
        "state": "awake" if reach.awake else "asleep",
        "awake_until": reach.awake_until,
        "next_window": reach.next_window,
        "last_heard": reach.last_heard,
    }


def _rpc_id(call: Call) -> int:
    text = call.params["rpcId"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, f"no rpc {text!r}")
    return int(text)


def _wait(call: Call) -> bool:
    text = call.query.get("wait", "true").lower()
    if text not in ("true", "false"):
        raise ApiError(400, "'wait' must be true or false")
    return text == "true"


def _state(text: Optional[str]) -> Optional[RpcState]:
    if text is None:
        return None
    try:
        return RpcState(text.upper())
    except ValueError:
        names = ", ".join(s.value for s in RpcState)
        raise ApiError(400, f"'state' must be one of {names}") from None


def rpc_routes(services: Services) -> list[Route]:
    rpc = services.rpc

    async def send(call: Call) -> Reply:
        obj = expect_object(
            call.body, ("method", "params", "timeout", "oneway", "expirationTime"), ("method",)
        )
        oneway = obj.get("oneway", False)
        if not isinstance(oneway, bool):
            raise ApiError(400, "'oneway' must be true or false")
        wait = _wait(call)
        queued = await rpc.enqueue(
            call.params["id"],
            require_str(obj, "method"),
            obj.get("params"),
            oneway=oneway,
            timeout_ms=optional_int(obj, "timeout"),
            expires_at=optional_int(obj, "expirationTime"),
        )
        location = {"Location": f"/api/v1/devices/{queued.device_id}/rpc/{queued.id}"}
        if not wait:
            return Reply(202, rpc_json(queued), location)
        done = await rpc.wait(queued.device_id, queued.id, queued.timeout_ms / 1000)
        if done.state is RpcState.SUCCESSFUL:
            return Reply(200, rpc_json(done) if done.oneway else done.response)
        if done.state in _ENDED:
            reason = f"rpc {done.id} is {done.state.value}: {done.error}"
            return Reply(_ENDED[done.state], {"error": reason}, location)
        return Reply(202, rpc_json(done), location)

    async def list_(call: Call) -> Reply:
        found = await rpc.list(call.params["id"], _state(call.query.get("state")))
        return Reply(200, {"rpcs": [rpc_json(r) for r in found]})

    async def show(call: Call) -> Reply:
        return Reply(200, rpc_json(await rpc.get(call.params["id"], _rpc_id(call))))

    async def cancel(call: Call) -> Reply:
        return Reply(200, rpc_json(await rpc.cancel(call.params["id"], _rpc_id(call))))

    async def reachability(call: Call) -> Reply:
        return Reply(200, reachability_json(services.scheduler.reachability(call.params["id"])))

    one = BASE + "/{rpcId}"
    return [
        Route(
            "POST", BASE, send,
            "Send an RPC to a device: two-way waits for its reply (202 if not sent in time)",
            "rpc", request=ref("RpcRequest"), response={"description": "The device's reply."},
            query=(Param("wait", "false: answer 202 with the queued RPC at once."),),
        ),
        Route(
            "GET", BASE, list_, "The device's RPCs, oldest first", "rpc",
            query=(Param("state", "Only RPCs in this state (QUEUED, SENT, ...)."),),
            response=ref("RpcList"),
        ),
        Route("GET", one, show, "Show one RPC", "rpc", response=ref("Rpc")),
        Route("DELETE", one, cancel, "Cancel an unfinished RPC (it is FAILED)", "rpc",
              response=ref("Rpc")),
        Route(
            "GET", "/api/v1/devices/{id}/reachability", reachability,
            "Whether the device can be reached now, and when next", "rpc",
            response=ref("Reachability"),
        ),
    ]
