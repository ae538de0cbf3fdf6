# -*- test-case-name: tests.upstream.test_events -*-
"""
CloudEvents 1.0 for accepted uplinks (and the state changes of server-side
RPCs), written as the outbox stores them.

Each uplink becomes one event in the structured JSON format:

 - C{id}: a random UUID (version 4); C{specversion} C{1.0};
 - C{source}: C{/coap-gateway/<instance>/devices/<device id>} (percent-encoded);
 - C{type}: C{io.coap-gateway.<kind>.v1} (L{UplinkKind});
 - C{subject}: the device's name;
 - (a dialect with an L{EventShape} of its own names C{type}, C{source} and
   C{subject} its way);
 - C{time}: the device's own C{ts} when it sent one, else the receive time
   (RFC 3339, UTC, milliseconds);
 - C{datacontenttype} C{application/json}, C{data}: the uplink as normalised
   JSON (telemetry: C{[{"ts": ms, "values": {...}}, ...]}); an uplink that is
   not JSON (L{EventFactory.raw_event}) has its own content type and its
   bytes in C{data_base64};
 - extensions C{application}, C{device} (name), C{deviceid}, C{dialect},
   and C{sequence}: the device's own counter, 1, 2, 3 ... with no gaps among
   committed events, so a consumer can tell a gap from a duplicate.

The store gives the sequence number when the event is committed (inside the
same unit as the uplink, so a failed unit leaves no gap); L{structured}
adds it to the stored text.

Why not the SDK's C{CloudEvent} and C{JSONFormat.write} on the hot path: they
cost about 22 µs per event (attribute validation, a datetime, a generic
encoder) against about 6 µs here, where the values are already JSON text
(L{gateway.store.unit.AppendTelemetry}) and every constant part of the
event is encoded once per device.  The SDK reads what this writes (the
tests check that), and writes the headers of the binary mode (L{binary}).
"""

from __future__ import annotations

import base64
import json
import random
import time
from datetime import datetime, timezone
from json.encoder import encode_basestring_ascii
from typing import Any, Callable, Mapping

import attrs
from cloudevents.core.bindings.http import HTTPMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gateway.domain.events import DEFAULT_SHAPE, EventShape, UplinkKind
from gateway.domain.model import Device
from gateway.store.unit import AppendEvent, AppendTelemetry, JSONItems, OutboxEvent

__all__ = ["EventFactory", "EventShape", "UplinkKind", "binary", "json_object", "structured"]

_FORMAT = JSONFormat()


#: The last second formatted: uplinks arrive many to a second.
_last_second: list[Any] = [None, ""]


def rfc3339(ms: int) -> str:
    """Integer ms since the epoch as RFC 3339 UTC with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    if _last_second[0] != seconds:
        _last_second[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return "%s.%03dZ" % (_last_second[1], millis)


def json_object(items: JSONItems) -> str:
    """The JSON object of (key, JSON text) pairs an operation already checked."""
    return "{%s}" % ",".join(f"{encode_basestring_ascii(k)}:{text}" for k, text in items)


def new_id() -> str:
    """
    A random (version 4) UUID, as C{str(uuid.uuid4())} writes it, from
    L{random.getrandbits}: an event id must be unique, not secret, and a
    system call per event for C{os.urandom} costs more than the rest of it.
    (The generator is seeded from the system's entropy, and again after a fork.)
    """
    n = _bits(128) & _V4_CLEAR | _V4_SET
    h = "%032x" % n
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_bits = random.getrandbits
#: The version (4) and variant (RFC 4122) bits of a random UUID.
_V4_CLEAR = ~(0xF000 << 64 | 0xC000 << 48) & (2**128 - 1)
_V4_SET = 0x4000 << 64 | 0x8000 << 48


@attrs.define
class EventFactory:
    """
    Builds the outbox operation of each uplink.

    @ivar instance: names this gateway in every event's C{source}.
    @ivar shapes: the L{EventShape} of the dialects that have their own.
    """

    instance: str
    _new_id: Callable[[], str] = new_id
    shapes: Mapping[str, EventShape] = attrs.field(factory=dict)
    # Per (device id, dialect): the record the encoded attributes that never
    # change were made of (a renamed device has a new one), and that text:
    # the source, the subject, then the rest.
    _heads: dict[tuple[str, str], tuple[Device, str, str, str]] = attrs.field(
        factory=dict, repr=False
    )

    def _head(self, device: Device, dialect: str, subject: str | None = None) -> str:
        key = (device.id, dialect)
        found = self._heads.get(key)
        if found is None or not (found[0] is device or found[0] == device):
            if len(self._heads) >= 65536:
                self._heads.clear()
            shape = self.shapes.get(dialect, DEFAULT_SHAPE)
            extensions = "".join(
                f",{encode_basestring_ascii(k)}:{encode_basestring_ascii(v)}"
                for k, v in shape.extensions(self.instance, device).items()
            )
            found = self._heads[key] = (
                device,
                f',"source":{encode_basestring_ascii(shape.source(self.instance, device))}',
                f',"subject":{encode_basestring_ascii(shape.subject(device))}',
                f',"application":{encode_basestring_ascii(device.application)}'
                f',"device":{encode_basestring_ascii(device.name)}'
                f',"deviceid":{encode_basestring_ascii(device.id)}'
                f',"dialect":{encode_basestring_ascii(dialect)}{extensions}',
            )
        if subject is not None:
            return f'{found[1]},"subject":{encode_basestring_ascii(subject)}{found[3]}'
        return found[1] + found[2] + found[3]

    def _type(self, kind: UplinkKind, dialect: str) -> str:
        shape = self.shapes.get(dialect)
        return kind.event_type if shape is None else shape.type(kind)

    def event(
        self,
        kind: UplinkKind,
        device: Device,
        dialect: str,
        received_ms: int,
        data: str,
        device_ms: int | None = None,
    ) -> AppendEvent:
        """
        The operation appending one event whose C{data} is the JSON text
        C{data}; C{device_ms} is the device's own time, if it sent one.
        """
        return self._append(
            kind, device, dialect, received_ms, device_ms,
            f'"datacontenttype":"application/json","data":{data}',
        )

    def raw_event(
        self,
        kind: UplinkKind,
        device: Device,
        dialect: str,
        received_ms: int,
        payload: bytes,
        content_type: str,
        device_ms: int | None = None,
    ) -> AppendEvent:
        """The event of an uplink that is not JSON: its bytes as C{data_base64}."""
        data = base64.b64encode(payload).decode("ascii")
        return self._append(
            kind, device, dialect, received_ms, device_ms,
            f'"datacontenttype":{encode_basestring_ascii(content_type)},"data_base64":"{data}"',
        )

    def publish_event(
        self,
        device: Device,
        dialect: str,
        received_ms: int,
        payload: bytes,
        content_type: str | None,
        subject: str,
        extensions: Mapping[str, str],
    ) -> AppendEvent:
        """
        The event of a message the device published on a channel: the
        channel is its C{subject}, C{extensions} are added to the shape's;
        JSON (C{content_type} C{None}: the payload is JSON text) goes as
        C{data}, anything else as C{data_base64}.
        """
        if content_type is None:
            content = f'"datacontenttype":"application/json","data":{payload.decode("utf-8")}'
        else:
            data = base64.b64encode(payload).decode("ascii")
            content = (
                f'"datacontenttype":{encode_basestring_ascii(content_type)}'
                f',"data_base64":"{data}"'
            )
        extra = "".join(
            f",{encode_basestring_ascii(k)}:{encode_basestring_ascii(v)}"
            for k, v in extensions.items()
        )
        return self._append(
            UplinkKind.PUBLISH, device, dialect, received_ms, None, content, subject, extra
        )

    def _append(
        self,
        kind: UplinkKind,
        device: Device,
        dialect: str,
        received_ms: int,
        device_ms: int | None,
        content: str,
        subject: str | None = None,
        extra: str = "",
    ) -> AppendEvent:
        event_id = self._new_id()
        at = received_ms if device_ms is None else device_ms
        event_type = self._type(kind, dialect)
        body = (
            f'{{"specversion":"1.0","id":"{event_id}","type":{encode_basestring_ascii(event_type)}'
            f'{self._head(device, dialect, subject)}{extra},"time":"{rfc3339(at)}",{content}}}'
        )
        return AppendEvent(device.id, event_id, event_type, at, received_ms, body)

    def telemetry(
        self,
        device: Device,
        dialect: str,
        received_ms: int,
        records: AppendTelemetry,
        device_ms: int | None,
    ) -> AppendEvent:
        """The event of a telemetry uplink, from its already-encoded records."""
        data = ",".join(
            '{"ts":%d,"values":%s}' % (ts, json_object(values)) for ts, values in records.records
        )
        return self.event(
            UplinkKind.TELEMETRY, device, dialect, received_ms, f"[{data}]", device_ms
        )


def structured(event: OutboxEvent) -> str:
    """The stored event as CloudEvents JSON, with its sequence number."""
    # The body is a JSON object written by EventFactory: add one member.
    return f'{event.body[:-1]},"sequence":{event.sequence}}}'


def binary(event: OutboxEvent) -> HTTPMessage:
    """
    The stored event in the HTTP binary content mode: the SDK's binding
    writes the C{ce-*} headers (percent-encoded as the binding asks; its
    C{ce-time} has microseconds) and C{Content-Type}, the body is C{data} as
    JSON, or the bytes of C{data_base64}.  (The SDK would write a list
    C{data} as Python's repr, hence the body here.)
    """
    attributes = json.loads(structured(event))
    if "data_base64" in attributes:
        data = base64.b64decode(attributes.pop("data_base64"))
    else:
        data = json.dumps(attributes.pop("data"), separators=(",", ":")).encode("utf-8")
    attributes["time"] = datetime.fromtimestamp(event.time_ms / 1000, timezone.utc)
    return to_binary(CloudEvent(attributes, data), _FORMAT)
