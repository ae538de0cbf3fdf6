# -*- test-case-name: tests.dialects.efento.test_config -*-
"""
An Efento C{ProtoConfig} both ways.  The sensor's own becomes client
attributes: protobuf's JSON mapping with every field, as the reference's
C{JsonFormat} printer including default values writes it (lowerCamelCase
keys, enums by name, bytes in base64), but without C{cloudToken}: that is
the device's access token, which the reference exposes with them.  One for
the sensor is encoded from the JSON form an operator queues (camelCase or
the schema's own field names).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from gateway.domain.model import JSONValue

__all__ = ["BadConfig", "config_attributes", "encode_config"]


class BadConfig(ValueError):
    """A configuration that does not fit the sensor's schema."""


def config_attributes(message: Message) -> dict[str, JSONValue]:
    """The client attributes of the sensor's configuration (without its cloud token)."""
    values = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    values.pop("cloudToken", None)
    return values


def encode_config(config_class: type[Message], params: Any) -> bytes:
    """The encoded C{ProtoConfig} of C{params} (a JSON object); L{BadConfig} if it does not fit."""
    if not isinstance(params, dict):
        raise BadConfig("the configuration must be a JSON object")
    message = config_class()
    try:
        json_format.ParseDict(params, message)
    except json_format.ParseError as e:
        raise BadConfig(str(e)) from None
    return message.SerializeToString()
