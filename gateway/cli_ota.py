# -*- test-case-name: tests.test_cli_ota -*-
"""
C{gatewayctl ota ...}: OTA packages through the API.

 - C{ota upload FILE --title T --version V [--type firmware|software]
   [--algorithm A] [--checksum HEX] [--content-type TYPE]}
 - C{ota list [--type T]}, C{ota assignments [--type T]}
 - C{ota assign DEVICE|--profile P --title T --version V [--type T]}
 - C{ota unassign DEVICE|--profile P [--type T]}
 - C{ota delete --title T --version V [--type T]} (refused while assigned:
   unassign first)
 - C{ota status DEVICE}: the assigned packages and the last reported state.

DEVICE is an id or a name (in the default application).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from .cli_client import Client

__all__ = ["add_commands", "execute", "GROUPS"]

#: The top-level commands this module handles.
GROUPS = ("ota",)

_TYPES = ("firmware", "software")


def add_commands(top: Any, output: argparse.ArgumentParser) -> None:
    """Add the commands to C{top}, the parser's sub-parsers."""
    ota = top.add_parser("ota", help="firmware and software OTA packages", parents=[output])
    o = ota.add_subparsers(dest="action", required=True, metavar="ACTION")

    def kind(p: argparse.ArgumentParser) -> None:
        p.add_argument("--type", choices=_TYPES, default="firmware", help="default: firmware")

    def package(p: argparse.ArgumentParser) -> None:
        p.add_argument("--title", required=True)
        p.add_argument("--version", required=True)
        kind(p)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("device", metavar="DEVICE", nargs="?", help="a device id or name")
        p.add_argument("--profile", metavar="P", help="the profile instead of a device")

    upload = o.add_parser("upload", help="upload a package", parents=[output])
    upload.add_argument("file", metavar="FILE")
    package(upload)
    upload.add_argument("--algorithm", help="SHA256 (default), SHA384, SHA512, MD5 or CRC32")
    upload.add_argument("--checksum", metavar="HEX", help="refuse the upload if it differs")
    upload.add_argument("--content-type", default="application/octet-stream")
    for action, text in (("list", "list packages"), ("assignments", "list assignments")):
        kind_filter = o.add_parser(action, help=text, parents=[output])
        kind_filter.add_argument("--type", choices=_TYPES, help="only this type")
    assign = o.add_parser("assign", help="assign a package to a device or profile",
                          parents=[output])
    target(assign)
    package(assign)
    unassign = o.add_parser("unassign", help="remove an assignment", parents=[output])
    target(unassign)
    kind(unassign)
    package(o.add_parser("delete", help="delete a package (not while assigned)",
                         parents=[output]))
    o.add_parser("status", help="a device's packages and reported state",
                 parents=[output]).add_argument("device", metavar="DEVICE")


def _target_path(client: Client, args: argparse.Namespace, error: type[Exception]) -> str:
    if (args.device is None) == (args.profile is None):
        raise error("name a DEVICE or --profile, not both")
    if args.profile is not None:
        base = "/api/v1/profiles/" + quote(args.profile, safe="")
    else:
        base = "/api/v1/devices/" + quote(client.device(args.device)["id"], safe="")
    return f"{base}/ota/{args.type}"


def execute(client: Client, args: argparse.Namespace, error: type[Exception]) -> Any:
    """Run an C{ota} command; its result, to print (C{error} for bad arguments)."""
    action = args.action
    if action == "upload":
        try:
            with open(args.file, "rb") as f:
                data = f.read()
        except OSError as e:
            raise error(f"cannot read {args.file}: {e.strerror}") from None
        query = {
            "type": args.type, "title": args.title, "version": args.version,
            "algorithm": args.algorithm, "checksum": args.checksum,
        }
        return client.call("POST", "/api/v1/ota/packages", data, query=query,
                           content_type=args.content_type)
    if action == "list":
        return client.call("GET", "/api/v1/ota/packages", query={"type": args.type})["packages"]
    if action == "assignments":
        found = client.call("GET", "/api/v1/ota/assignments", query={"type": args.type})
        return found["assignments"]
    if action == "assign":
        body = {"title": args.title, "version": args.version}
        return client.call("PUT", _target_path(client, args, error), body)
    if action == "unassign":
        client.call("DELETE", _target_path(client, args, error))
        return {"unassigned": args.type}
    if action == "delete":
        path = "/api/v1/ota/packages/{}/{}/{}".format(
            args.type, quote(args.title, safe=""), quote(args.version, safe="")
        )
        client.call("DELETE", path)
        return {"deleted": {"type": args.type, "title": args.title, "version": args.version}}
    device = client.device(args.device)
    return client.call("GET", "/api/v1/devices/" + quote(device["id"], safe="") + "/ota")
