# -*- test-case-name: tests.dialects.test_drogue -*-
"""
Drogue's CloudEvent shape (reference A.4): C{type io.drogue.event.v1},
C{source drogue://{app}/{device}} with the device name percent-encoded as
Rust's C{NON_ALPHANUMERIC} set does (every byte but ASCII letters and
digits), and the extension C{instance}.  Each publish adds the channel as
its subject and the extensions C{sender} and C{partitionkey}
(L{publisher_extensions}).
"""

from __future__ import annotations

from typing import Mapping

from gateway.domain.events import EventShape, UplinkKind
from gateway.domain.model import Device

__all__ = ["DROGUE_SHAPE", "encode", "publisher_extensions"]

_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def encode(text: str) -> str:
    """Percent-encode every byte of the UTF-8 text but ASCII letters and digits."""
    return "".join(chr(b) if b in _PLAIN else "%%%02X" % b for b in text.encode("utf-8"))


def _type(kind: UplinkKind) -> str:
    return "io.drogue.event.v1"


def _source(instance: str, device: Device) -> str:
    return f"drogue://{device.application}/{encode(device.name)}"


def _extensions(instance: str, device: Device) -> Mapping[str, str]:
    return {"instance": instance}


def publisher_extensions(sender: Device) -> dict[str, str]:
    """C{sender}: who published (a gateway, with C{as}); C{partitionkey}: C{{app}/{sender}}."""
    return {
        "sender": sender.name,
        "partitionkey": f"{encode(sender.application)}/{encode(sender.name)}",
    }


DROGUE_SHAPE = EventShape(type=_type, source=_source, extensions=_extensions)
