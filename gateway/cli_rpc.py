# -*- test-case-name: tests.test_cli_rpc -*-
"""
C{gatewayctl rpc send|list|show|cancel}: server-side RPCs through the API;
C{gatewayctl command send APP DEVICE NAME [--payload TEXT]}: a command
through Drogue's command endpoint (queued; prints the RPC).

C{rpc send DEVICE METHOD [--params JSON]} waits, as the API does: a
two-way RPC prints the device's reply, a one-way one the RPC once the
device acknowledged it; an RPC not sent within its timeout (the device
sleeps) prints the queued RPC, to follow with C{rpc show}.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Mapping
from urllib.parse import quote

from .cli_client import Client

__all__ = ["add_commands", "execute", "GROUPS"]

#: The top-level commands this module handles.
GROUPS = ("rpc", "command")



def add_commands(top: Any, output: argparse.ArgumentParser) -> None:
    """Add the commands to C{top}, the parser's sub-parsers."""
    rpc = top.add_parser("rpc", help="server-side RPCs to devices", parents=[output])
    r = rpc.add_subparsers(dest="action", required=True, metavar="ACTION")
    send = r.add_parser("send", help="send an RPC (waits for a two-way reply)", parents=[output])
    send.add_argument("device", metavar="DEVICE")
    send.add_argument("method")
    send.add_argument("--params", default="null", help="JSON params (default null)")
    send.add_argument("--timeout", type=int, metavar="MS", help="ms to wait for the reply")
    send.add_argument("--oneway", action="store_true", help="no reply expected")
    send.add_argument("--expiration", type=int, metavar="MS",
                      help="expirationTime, ms since the epoch")
    send.add_argument("--no-wait", action="store_true", help="queue it and print it at once")
    command = top.add_parser("command", help="Drogue commands to devices", parents=[output])
    c = command.add_subparsers(dest="action", required=True, metavar="ACTION")
    csend = c.add_parser("send", help="queue a command for a device", parents=[output])
    csend.add_argument("application", metavar="APP")
    csend.add_argument("device", metavar="DEVICE", help="the device's name")
    csend.add_argument("name", metavar="NAME", help="the command")
    csend.add_argument("--payload", default="", help="the command's payload (text)")
    csend.add_argument("--content-type", default="text/plain", help="the payload's media type")
    listing = r.add_parser("list", help="a device's RPCs", parents=[output])
    listing.add_argument("device", metavar="DEVICE")
    listing.add_argument("--state", help="only RPCs in this state (QUEUED, SENT, ...)")
    for action, text in (("show", "show one RPC"), ("cancel", "cancel an unfinished RPC")):
        p = r.add_parser(action, help=text, parents=[output])
        p.add_argument("device", metavar="DEVICE")
        p.add_argument("id", type=int, metavar="ID")


def _rpc_path(device: Mapping[str, Any], suffix: str = "") -> str:
    return "/api/v1/devices/" + quote(device["id"], safe="") + "/rpc" + suffix


def execute(client: Client, args: argparse.Namespace, error: type[Exception]) -> Any:
    """Run a command of L{GROUPS}; its result, to print (C{error} for bad arguments)."""
    if args.group == "command":
        path = "/api/command/v1alpha1/apps/{}/devices/{}".format(
            quote(args.application, safe=""), quote(args.device, safe="")
        )
        return client.call(
            "POST", path, args.payload.encode("utf-8"), query={"command": args.name},
            content_type=args.content_type,
        )
    device = client.device(args.device)
    if args.action == "send":
        try:
            params = json.loads(args.params)
        except ValueError:
            raise error(f"--params is not JSON: {args.params!r}") from None
        body: dict[str, Any] = {"method": args.method, "params": params}
        if args.oneway:
            body["oneway"] = True
        if args.timeout is not None:
            body["timeout"] = args.timeout
        if args.expiration is not None:
            body["expirationTime"] = args.expiration
        query = {"wait": "false"} if args.no_wait else None
        return client.call("POST", _rpc_path(device), body, query=query)
    if args.action == "list":
        return client.call("GET", _rpc_path(device), query={"state": args.state})["rpcs"]
    if args.action == "show":
        return client.call("GET", _rpc_path(device, f"/{args.id}"))
    return client.call("DELETE", _rpc_path(device, f"/{args.id}"))
