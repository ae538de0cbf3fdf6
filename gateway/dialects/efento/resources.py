# -*- test-case-name: tests.dialects.efento.test_resources -*-
"""
Efento's CoAP resource tree: C{/efento/{m,i,c,t}}.

 - POST C{m} (C{ProtoMeasurements}) and C{i} (C{ProtoDeviceInfo}) record
   telemetry, POST C{c} (C{ProtoConfig}) writes client attributes; GET C{t}
   is 2.05 with the clock's epoch seconds, 4 bytes big-endian.  Any other
   path or method is 4.00 with the reason.
 - A payload the schema cannot decode is 4.00 (the device's mistake; the
   reference answers 5.00).  The message's C{cloud_token} is the device's
   access token: one that authenticates nobody is 4.01 and counts against
   the source address as wrong credentials (a throttled source gets 4.29).
   With the dialect's C{profiles} set, a device of another profile is 4.00.
 - Success is 2.01, as CON or NON as the request came (the reference leaves
   NON requests unanswered), carrying a configuration pending for the sensor
   (L{gateway.dialects.efento.downlink}).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Optional

import attrs
from google.protobuf.message import DecodeError, Message
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.dialects.failures import service_failure
from gateway.dialects.toolkit import Leaf, authenticate_token, check_source
from gateway.domain.model import Device
from gateway.service.interfaces import IDeviceServices

from .config import config_attributes, encode_config
from .device_info import device_info_record
from .downlink import PendingConfig
from .measurements import NoMeasurements, measurement_records
from .schema import EfentoSchema

__all__ = ["Context", "EfentoResource", "time_payload"]


@attrs.frozen
class Context:
    """What the dialect's resource works with."""

    devices: IDeviceServices
    clock: IReactorTime
    schema: EfentoSchema
    #: Seconds an answer waits for a queued configuration to be handed over.
    config_wait: float = 1.0
    #: The profiles whose devices may use the dialect (C{None}: any).
    profiles: Optional[frozenset[str]] = None


#: Stores one decoded uplink of a device; fires once durable.
_Store = Callable[[Context, Device, Any], "Deferred[None]"]


def _measurements(context: Context, device: Device, message: Any) -> "Deferred[None]":
    try:
        records = measurement_records(message)
    except NoMeasurements as e:
        raise errors.BadRequest(f"Invalid ProtoMeasurements: {e}") from None
    return context.devices.record_telemetry(device.id, records)


def _device_info(context: Context, device: Device, message: Any) -> "Deferred[None]":
    return context.devices.record_telemetry(device.id, [device_info_record(message)])


def _config(context: Context, device: Device, message: Any) -> "Deferred[None]":
    return context.devices.set_client_attributes(device.id, config_attributes(message))


def time_payload(clock: IReactorTime) -> bytes:
    """The answer to C{/efento/t}: the clock's epoch seconds, 4 bytes big-endian."""
    return struct.pack(">I", int(clock.seconds()) & 0xFFFFFFFF)


def _segments(request: Any) -> list[str]:
    return [bytes(segment).decode("utf-8", "replace") for segment in request.postpath]


class EfentoResource(Leaf):
    """C{/efento} and everything under it."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._context = context
        schema = context.schema
        #: Each uplink endpoint: its message class, the message's name, and how it is stored.
        self._uplinks: dict[str, tuple[type[Message], str, _Store]] = {
            "m": (schema.measurements, "ProtoMeasurements", _measurements),
            "i": (schema.device_info, "ProtoDeviceInfo", _device_info),
            "c": (schema.config, "ProtoConfig", _config),
        }

    def render_GET(self, request: Any) -> Any:
        if _segments(request) != ["t"]:
            raise errors.BadRequest(self._refusal(request, "GET", "only /efento/t answers GET"))
        return tx.Message(code=n.CONTENT, payload=time_payload(self._context.clock))

    def render_POST(self, request: Any) -> Any:
        path = _segments(request)
        uplink = self._uplinks.get(path[0]) if len(path) == 1 else None
        if uplink is None:
            raise errors.BadRequest(
                self._refusal(request, "POST", "POST goes to /efento/m, /efento/i or /efento/c")
            )
        message_class, name, store = uplink
        try:
            message: Any = message_class.FromString(bytes(request.payload))
        except DecodeError as e:
            raise errors.BadRequest(f"Invalid {name}: {e}") from None
        device = self._authenticate(request, message.cloud_token)
        d = store(self._context, device, message)
        d.addCallbacks(self._stored, service_failure, (device,))
        return d

    def render_PUT(self, request: Any) -> Any:
        raise errors.BadRequest(self._refusal(request, "PUT", "Efento uses POST and GET"))

    def render_DELETE(self, request: Any) -> Any:
        raise errors.BadRequest(self._refusal(request, "DELETE", "Efento uses POST and GET"))

    @staticmethod
    def _refusal(request: Any, method: str, hint: str) -> str:
        path = "/".join(["efento", *_segments(request)])
        return f"No Efento endpoint for {method} /{path}: {hint}"

    def _authenticate(self, request: Any, token: str) -> Device:
        devices = self._context.devices
        source = check_source(devices, request)
        device = authenticate_token(devices, request, token)
        if device is None:
            devices.report_wrong_credentials(source)
            raise errors.Unauthorized("Unknown cloud token")
        profiles = self._context.profiles
        if profiles is not None and device.profile not in profiles:
            raise errors.BadRequest(f"Profile {device.profile!r} is not an Efento profile")
        devices.report_seen(device.id, "uplink")
        return device

    def _stored(self, _: None, device: Device) -> Any:
        context = self._context
        if not context.devices.queued_rpcs(device.id):
            return tx.Message(code=n.CREATED)
        wait = PendingConfig(
            context.devices.subscribe_rpc,
            context.clock,
            device.id,
            context.config_wait,
            lambda params: encode_config(context.schema.config, params),
        )
        return wait.answer.addCallback(lambda payload: tx.Message(code=n.CREATED, payload=payload))
