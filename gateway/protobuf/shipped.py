"""
The .proto files shipped with the gateway (C{etc/proto}, package data as
C{gateway/protobuf/proto}): ThingsBoard's default profile schemas and the
fixed messages of its transport.
"""

from __future__ import annotations

from importlib import resources

from gateway.protobuf.schema import ProtoFiles, compile_proto

__all__ = ["DEFAULT_SCHEMAS", "TRANSPORT_FILES", "shipped_text", "transport_messages"]

#: The default schema of each profile schema field.
DEFAULT_SCHEMAS = {
    "telemetry_proto": "telemetry.proto",
    "attributes_proto": "attributes.proto",
    "rpc_request_proto": "rpc_request.proto",
    "rpc_response_proto": "rpc_response.proto",
}

#: ThingsBoard's fixed messages: packages C{transport} and C{transportapi}.
TRANSPORT_FILES = ("transport.proto", "transportapi.proto")


def shipped_text(name: str) -> str:
    """The text of shipped file C{name} (a path under C{etc/proto})."""
    return (resources.files(__package__) / "proto" / name).read_text("utf-8")


def transport_messages() -> ProtoFiles:
    """The fixed messages, compiled (C{transport.GetAttributeResponseMsg} and the rest)."""
    return compile_proto({name: shipped_text(name) for name in TRANSPORT_FILES}, allow_imports=True)
