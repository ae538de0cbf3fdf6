# -*- test-case-name: tests.service.test_schemas -*-
"""
Protobuf payload schemas of profiles, compiled.

L{compile_schemas} is the check a profile passes when created or changed
(L{gateway.service.registry}); a schema left unset is ThingsBoard's default
(C{etc/proto}).  L{SchemaCache} holds each profile's compiled schemas and
compiles again as soon as the profile's schemas differ from those it
compiled, so a change applies to connected and observing devices with their
next uplink or downlink (ThingsBoard's #7053 kept the old ones).
"""

from __future__ import annotations

from typing import Callable, Optional

import attrs
from google.protobuf.message import Message
from twisted.logger import Logger

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import PayloadFormat, Profile
from gateway.protobuf.schema import SchemaError, compile_proto
from gateway.protobuf.shipped import DEFAULT_SCHEMAS, shipped_text
from gateway.service.interfaces import ProfileSchemas

__all__ = ["SCHEMA_FIELDS", "SchemaCache", "compile_schemas"]

log = Logger()

#: The profile's schema fields, in ThingsBoard's order.
SCHEMA_FIELDS = tuple(DEFAULT_SCHEMAS)

_Texts = tuple[Optional[str], ...]


def _texts(profile: Profile) -> _Texts:
    return tuple(getattr(profile, field) for field in SCHEMA_FIELDS)


def compile_schemas(profile: Profile) -> ProfileSchemas:
    """
    The profile's schemas compiled, each unset one the default;
    L{InvalidArgument} naming the schema and why when one is refused.
    """
    classes: list[type[Message]] = []
    for field in SCHEMA_FIELDS:
        text = getattr(profile, field)
        name = DEFAULT_SCHEMAS[field]
        try:
            files = compile_proto({name: shipped_text(name) if text is None else text})
            classes.append(files.last_message(name))
        except SchemaError as e:
            raise InvalidArgument(f"{field}: {e}") from None
        except KeyError:
            raise InvalidArgument(f"{field}: the schema declares no message") from None
    return ProfileSchemas(*classes)


@attrs.define
class SchemaCache:
    """The compiled schemas of each protobuf profile, by profile name."""

    #: The current profile of a name (the credential cache's), or None.
    _profile: Callable[[str], Optional[Profile]]
    _compiled: dict[str, tuple[_Texts, ProfileSchemas]] = attrs.field(factory=dict)

    def schemas(self, name: str) -> Optional[ProfileSchemas]:
        """The schemas of profile C{name}; C{None} unless it is a protobuf profile."""
        profile = self._profile(name)
        if profile is None or profile.payload_format is not PayloadFormat.PROTOBUF:
            self._compiled.pop(name, None)
            return None
        texts = _texts(profile)
        held = self._compiled.get(name)
        if held is not None and held[0] == texts:
            return held[1]
        compiled = compile_schemas(profile)
        self._compiled[name] = (texts, compiled)
        log.info("Compiled the protobuf schemas of profile {profile}", profile=name)
        return compiled
