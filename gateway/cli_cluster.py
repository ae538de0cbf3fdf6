# -*- test-case-name: tests.test_cli_cluster -*-
"""
C{gatewayctl cluster}: the gateway nodes sharing the store, through the
API (C{GET /api/v1/cluster}): which are alive, the outbox partitions each
owns, and its last heartbeat.
"""

from __future__ import annotations

import argparse
from typing import Any

from .cli_client import Client

__all__ = ["add_commands", "execute", "GROUPS"]

#: The top-level commands this module handles.
GROUPS = ("cluster",)


def add_commands(top: Any, output: argparse.ArgumentParser) -> None:
    """Add the commands to C{top}, the parser's sub-parsers."""
    top.add_parser(
        "cluster", help="the gateway nodes: alive, partitions, last heartbeat", parents=[output]
    )


def execute(client: Client, args: argparse.Namespace) -> Any:
    """Run a command of L{GROUPS}; its result, to print."""
    return client.call("GET", "/api/v1/cluster")
