# -*- test-case-name: tests.dialects.efento.test_schema -*-
"""
The Efento sensor's published schema: the C{.proto} files shipped in
C{etc/proto/efento/} (L{gateway.protobuf.shipped}), compiled
with the protobuf runtime (L{gateway.protobuf.schema.compile_proto}) once,
when the dialect is installed.
"""

from __future__ import annotations

import attrs
from google.protobuf.message import Message

from gateway.protobuf.schema import compile_proto
from gateway.protobuf.shipped import shipped_text

__all__ = ["FILES", "EfentoSchema", "load_schema"]

#: The files, by the names their imports use.
FILES = (
    "efento/proto_measurement_types.proto",
    "efento/proto_measurements.proto",
    "efento/proto_device_info.proto",
    "efento/proto_rule.proto",
    "efento/proto_config.proto",
)


@attrs.frozen
class EfentoSchema:
    """The message classes of the three uplinks (and of the configuration downlink)."""

    measurements: type[Message]
    device_info: type[Message]
    config: type[Message]


def load_schema() -> EfentoSchema:
    """Read and compile the shipped files."""
    compiled = compile_proto({name: shipped_text(name) for name in FILES}, allow_imports=True)
    return EfentoSchema(
        measurements=compiled.message("ProtoMeasurements"),
        device_info=compiled.message("ProtoDeviceInfo"),
        config=compiled.message("ProtoConfig"),
    )
