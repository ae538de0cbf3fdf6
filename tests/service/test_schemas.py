"""L{gateway.service.schemas}: a profile's protobuf schemas compiled, and kept per profile."""

from __future__ import annotations

from typing import Optional

import attrs
import pytest

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import PayloadFormat, Profile
from gateway.service.schemas import SchemaCache, compile_schemas

PB = Profile("pb", PayloadFormat.PROTOBUF)


def test_unset_schemas_are_the_defaults() -> None:
    """A protobuf profile without schemas compiles ThingsBoard's default ones."""
    schemas = compile_schemas(PB)
    assert [c.DESCRIPTOR.full_name for c in attrs.astuple(schemas, recurse=False)] == [
        "telemetry.SensorDataReading",
        "attributes.SensorConfiguration",
        "rpc.RpcRequestMsg",
        "rpc.RpcResponseMsg",
    ]


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [
        ("telemetry_proto", 'syntax = "proto3";\nimport "x.proto";', "line 2: imports are not"),
        ("attributes_proto", 'syntax = "proto3";', "the schema declares no message"),
        ("rpc_response_proto", "message R {}", 'must begin with syntax = "proto3"'),
    ],
)
def test_a_refused_schema_is_named(field: str, text: str, reason: str) -> None:
    """A schema that does not compile, or has no message, is InvalidArgument naming the field."""
    with pytest.raises(InvalidArgument) as caught:
        compile_schemas(attrs.evolve(PB, **{field: text}))
    assert caught.value.message.startswith(f"{field}: ")
    assert reason in caught.value.message


def test_cache_compiles_again_when_the_profile_changes() -> None:
    """Compiled schemas are kept while the profile's schemas stay, recompiled once they change."""
    profiles: dict[str, Profile] = {"pb": PB, "json": Profile("json")}

    def profile(name: str) -> Optional[Profile]:
        return profiles.get(name)

    cache = SchemaCache(profile)
    first = cache.schemas("pb")
    assert first is not None and cache.schemas("pb") is first
    schema = 'syntax = "proto3"; message T { sint32 t = 1; }'
    profiles["pb"] = attrs.evolve(PB, telemetry_proto=schema, power_mode=PB.power_mode)
    changed = cache.schemas("pb")
    assert changed is not None and changed is not first
    assert changed.telemetry.DESCRIPTOR.full_name == "T"
    assert cache.schemas("json") is None and cache.schemas("gone") is None
    profiles["pb"] = attrs.evolve(profiles["pb"], payload_format=PayloadFormat.JSON)
    assert cache.schemas("pb") is None
