# -*- test-case-name: tests.test_cli_upstream -*-
"""
C{gatewayctl events} and C{gatewayctl upstream status|dead-letters|replay|discard}:
the outbox and the upstream, through the API.
"""

from __future__ import annotations

import argparse
from typing import Any, Optional

from .cli_client import Client

__all__ = ["add_commands", "execute", "GROUPS"]

#: The top-level commands this module handles.
GROUPS = ("events", "upstream")

_DEAD = "/api/v1/upstream/dead-letters"



def _page(p: argparse.ArgumentParser) -> None:
    p.add_argument("--after", type=int, help="only entries after this position")
    p.add_argument("--limit", type=int, help="at most this many (default 100)")


def add_commands(top: Any, output: argparse.ArgumentParser) -> None:
    """Add the commands to C{top}, the parser's sub-parsers."""
    events = top.add_parser("events", help="events held in the outbox", parents=[output])
    events.add_argument("--device", metavar="DEVICE", help="id or name of one device")
    events.add_argument("--type", help="one event type, e.g. io.coap-gateway.telemetry.v1")
    _page(events)
    upstream = top.add_parser("upstream", help="the upstream forwarder", parents=[output])
    u = upstream.add_subparsers(dest="action", required=True, metavar="ACTION")
    u.add_parser("status", help="outbox depth and the forwarder's state", parents=[output])
    _page(u.add_parser("dead-letters", help="events the upstream refused", parents=[output]))
    for action, what in (("replay", "send again"), ("discard", "delete")):
        p = u.add_parser(action, help=f"{what} dead letters", parents=[output])
        p.add_argument("ids", nargs="*", type=int, metavar="ID", help="positions (default: all)")


def _number(value: Optional[int]) -> Optional[str]:
    return None if value is None else str(value)


def execute(client: Client, args: argparse.Namespace) -> Any:
    """Run a command of L{GROUPS}; its result, to print."""
    page = {"after": _number(getattr(args, "after", None)),
            "limit": _number(getattr(args, "limit", None))}
    if args.group == "events":
        device = None if args.device is None else client.device(args.device)["id"]
        query = {"device": device, "type": args.type, **page}
        return client.call("GET", "/api/v1/events", query=query)["events"]
    if args.action == "status":
        return client.call("GET", "/api/v1/upstream")
    if args.action == "dead-letters":
        return client.call("GET", _DEAD, query=page)["dead_letters"]
    ids = {"ids": ",".join(map(str, args.ids)) if args.ids else None}
    if args.action == "replay":
        return client.call("POST", f"{_DEAD}/replay", query=ids)
    return client.call("DELETE", _DEAD, query=ids)
