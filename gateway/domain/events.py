"""
How upstream events are named: what kind of uplink each one is, and the
L{EventShape} a dialect names its events with (Drogue's comes with its
dialect, which may not reach the upstream layer; hence here, at the bottom).
"""

from __future__ import annotations

import enum
from typing import Callable, Mapping
from urllib.parse import quote

import attrs

from gateway.domain.model import Device

__all__ = ["UplinkKind", "EventShape", "DEFAULT_SHAPE"]


class UplinkKind(enum.Enum):
    """
    What a device sent (or, for C{RPC}, what became of a server-side RPC
    sent to it); the value names the CloudEvent C{type}.
    """

    TELEMETRY = "telemetry"
    ATTRIBUTES = "attributes"
    CLAIM = "claim"
    PROVISION = "provision"
    RPC = "rpc"
    #: A message on a channel the device names (Drogue's publish).
    PUBLISH = "publish"

    @property
    def event_type(self) -> str:
        return _EVENT_TYPES[self]


_EVENT_TYPES = {kind: f"io.coap-gateway.{kind.value}.v1" for kind in UplinkKind}


def default_type(kind: UplinkKind) -> str:
    """C{io.coap-gateway.<kind>.v1}."""
    return kind.event_type


def default_source(instance: str, device: Device) -> str:
    """C{/coap-gateway/<instance>/devices/<device id>}, percent-encoded."""
    return f"/coap-gateway/{quote(instance, safe='')}/devices/{quote(device.id)}"


def default_subject(device: Device) -> str:
    """The device's name."""
    return device.name


def no_extensions(instance: str, device: Device) -> Mapping[str, str]:
    """Our events carry no extensions beyond the common ones."""
    return {}


@attrs.frozen
class EventShape:
    """
    How a dialect names its events (Drogue's own shape comes with its
    dialect): the C{type} of each kind, the C{source} of a device of this
    gateway instance, its C{subject}, and the extension attributes of its
    events (beside the common ones).
    """

    type: Callable[[UplinkKind], str] = default_type
    source: Callable[[str, Device], str] = default_source
    subject: Callable[[Device], str] = default_subject
    extensions: Callable[[str, Device], Mapping[str, str]] = no_extensions


DEFAULT_SHAPE = EventShape()
