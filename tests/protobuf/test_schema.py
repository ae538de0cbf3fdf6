"""L{gateway.protobuf.schema.compile_proto}: proto3 schemas into message classes."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from gateway.protobuf.schema import SchemaError, compile_proto

# ThingsBoard's default profile schemas, as its UI and server give them.
TELEMETRY = """syntax ="proto3";
package telemetry;

message SensorDataReading {

  optional double temperature = 1;
  optional double humidity = 2;
  InnerObject innerObject = 3;

  message InnerObject {
    optional string key1 = 1;
    optional bool key2 = 2;
    optional double key3 = 3;
    optional int32 key4 = 4;
    optional string key5 = 5;
  }
}
"""
ATTRIBUTES = """syntax ="proto3";
package attributes;

message SensorConfiguration {
  optional string firmwareVersion = 1;
  optional string serialNumber = 2;
}"""
RPC_REQUEST = """syntax ="proto3";
package rpc;

message RpcRequestMsg {
  optional string method = 1;
  optional int32 requestId = 2;
  optional string params = 3;
}"""
RPC_RESPONSE = """syntax ="proto3";
package rpc;

message RpcResponseMsg {
  optional string payload = 1;
}"""


def test_default_telemetry_schema_round_trips() -> None:
    """The default telemetry schema's last message encodes and decodes nested values."""
    files = compile_proto({"telemetry.proto": TELEMETRY})
    reading_class = files.last_message("telemetry.proto")
    assert reading_class.DESCRIPTOR.full_name == "telemetry.SensorDataReading"
    assert files.message("telemetry.SensorDataReading.InnerObject").DESCRIPTOR.name == "InnerObject"
    reading = reading_class()
    json_format.ParseDict({"temperature": 21.5, "innerObject": {"key4": 7}}, reading)
    decoded = reading_class.FromString(reading.SerializeToString())
    assert json_format.MessageToDict(decoded, preserving_proto_field_name=True) == {
        "temperature": 21.5,
        "innerObject": {"key4": 7},
    }
    assert not decoded.HasField("humidity")  # proto3 optional keeps presence


@pytest.mark.parametrize(
    ("text", "full_name", "fields"),
    [
        (ATTRIBUTES, "attributes.SensorConfiguration", ["firmwareVersion", "serialNumber"]),
        (RPC_REQUEST, "rpc.RpcRequestMsg", ["method", "requestId", "params"]),
        (RPC_RESPONSE, "rpc.RpcResponseMsg", ["payload"]),
    ],
)
def test_default_schemas_compile(text: str, full_name: str, fields: list[str]) -> None:
    """The other default schemas compile to their message with its fields in order."""
    message_class = compile_proto({"s.proto": text}).last_message("s.proto")
    assert message_class.DESCRIPTOR.full_name == full_name
    assert [f.name for f in message_class.DESCRIPTOR.fields] == fields


def test_last_top_level_message_is_chosen() -> None:
    """last_message skips nested messages and enums declared after the last top-level one."""
    text = (
        'syntax = "proto3"; message A { message Z {} } message B { int32 x = 1; } enum E { O = 0; }'
    )
    assert compile_proto({"x.proto": text}).last_message("x.proto").DESCRIPTOR.name == "B"


def test_unknown_names_raise_key_error() -> None:
    """An unknown message, an unknown file, or a file without messages is a KeyError."""
    files = compile_proto({"e.proto": 'syntax = "proto3"; enum E { O = 0; }'})
    for lookup in (
        lambda: files.message("nope.M"),
        lambda: files.last_message("other.proto"),
        lambda: files.last_message("e.proto"),
    ):
        with pytest.raises(KeyError):
            lookup()


def test_scoping_rules() -> None:
    """Names resolve from the innermost scope outwards, nested, by package, or fully qualified."""
    text = """syntax = "proto3";
    package a.b;
    message T { int32 outer = 1; }
    message M {
      message T { int32 inner = 1; }
      T near = 1;          // M.T, the innermost
      .a.b.T far = 2;      // fully qualified
      b.T by_package = 3;  // 'b' is found as package a.b
      M.T nested = 4;
      Kind kind = 5;
      enum Kind { NONE = 0; SOME = 1; }
      repeated Other.Leaf leaves = 6;
    }
    message Other { message Leaf { M.Kind k = 1; } }
    """
    files = compile_proto({"m.proto": text})
    fields = files.message("a.b.M").DESCRIPTOR.fields_by_name
    assert fields["near"].message_type.full_name == "a.b.M.T"
    assert fields["far"].message_type.full_name == "a.b.T"
    assert fields["by_package"].message_type.full_name == "a.b.T"
    assert fields["nested"].message_type.full_name == "a.b.M.T"
    assert fields["kind"].enum_type.full_name == "a.b.M.Kind"
    assert fields["leaves"].message_type.full_name == "a.b.Other.Leaf"
    leaf = files.message("a.b.Other.Leaf")
    assert leaf.DESCRIPTOR.fields_by_name["k"].enum_type.full_name == "a.b.M.Kind"


def test_found_first_part_binds_the_rest() -> None:
    """Once a name's first part is found, the rest must lie under it, as protoc requires."""
    text = """syntax = "proto3"; package p;
    message X { message Y {} }
    message M { message X {} X.Y y = 1; }"""
    with pytest.raises(SchemaError, match="unknown type X.Y") as caught:
        compile_proto({"m.proto": text})
    assert caught.value.line == 3


def test_oneof_map_and_enum_values_work_at_run_time() -> None:
    """A oneof, a map of messages and an enum field behave as protoc-generated classes do."""
    text = """syntax = "proto3"; package p;
    enum Color { RED = 0; BLUE = 1; }
    message Part { Color color = 1; }
    message M { oneof o { string s = 1; int64 n = 2; } map<int32, Part> parts = 3; }"""
    m_class = compile_proto({"m.proto": text}).message("p.M")
    m = m_class(s="x")
    m.n = 5
    m.parts[3].color = 1
    decoded = m_class.FromString(m.SerializeToString())
    assert decoded.WhichOneof("o") == "n"
    assert decoded.parts[3].color == 1


def test_imports_resolve_among_the_files_of_the_call() -> None:
    """With allow_imports, a file uses the types of the files it imports, in any given order."""
    files = compile_proto(
        {
            "main.proto": 'syntax = "proto3"; package m; import "types.proto";\n'
            'option java_package = "com.example";\n'
            "message Reading { t.Kind kind = 1; repeated t.Value values = 2; }",
            "types.proto": 'syntax = "proto3"; package t; enum Kind { K0 = 0; }\n'
            "message Value { sint32 v = 1; }",
        },
        allow_imports=True,
    )
    reading = files.last_message("main.proto")
    assert reading.DESCRIPTOR.fields_by_name["values"].message_type.full_name == "t.Value"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.proto": 'syntax = "proto3";\nimport "gone.proto";'},
            "a.proto, line 2: imported file 'gone.proto' is not given",
        ),
        (
            {
                "a.proto": 'syntax = "proto3"; import "b.proto";',
                "b.proto": 'syntax = "proto3";\n\nimport "a.proto";',
            },
            "b.proto, line 3: import cycle through a.proto",
        ),
        (
            {
                "a.proto": 'syntax = "proto3"; message A {}',
                "b.proto": 'syntax = "proto3"; message A {}',
            },
            "duplicate symbol 'A'",
        ),
    ],
)
def test_bad_imports(files: dict[str, str], message: str) -> None:
    """A missing import, an import cycle and a name declared in two files are refused."""
    with pytest.raises(SchemaError) as caught:
        compile_proto(files, allow_imports=True)
    assert message in str(caught.value)


def test_separate_calls_do_not_share_names() -> None:
    """Each call builds its own pool, so two profiles may both declare rpc.RpcRequestMsg."""
    first = compile_proto({"r.proto": RPC_REQUEST}).last_message("r.proto")
    other = RPC_REQUEST.replace("optional string params = 3;", "bytes blob = 3;")
    second = compile_proto({"r.proto": other}).last_message("r.proto")
    assert "params" in first.DESCRIPTOR.fields_by_name
    assert "blob" in second.DESCRIPTOR.fields_by_name


BAD_SCHEMAS = [
    ("message A {}", 1, 'the schema must begin with syntax = "proto3"'),
    ('syntax = "proto2"; message A {}', 1, "only syntax = \"proto3\" is supported, not 'proto2'"),
    ('edition = "2023";', 1, "editions are not supported"),
    ('syntax = "proto3";\nimport "other.proto";', 2, "imports are not allowed in a profile schema"),
    ('syntax = "proto3";\noption java_package = "x";', 2, "options are not allowed"),
    ('syntax = "proto3"; message A {\n option deprecated = true; }', 2, "options are not allowed"),
    ('syntax = "proto3"; message A {\n int32 a = 1 [json_name = "b"]; }', 2, "field options"),
    ('syntax = "proto3"; message A {\n required int32 a = 1; }', 2, "required fields"),
    ('syntax = "proto3"; message A {\n int32 a = 1 [default = 5]; }', 2, "default values"),
    ('syntax = "proto3"; message A {\n optional group G = 1 { } }', 2, "groups"),
    ('syntax = "proto3"; message A {\n extensions 100 to 200; }', 2, "extensions"),
    ('syntax = "proto3"; message A {}\nextend A { int32 b = 1; }', 2, "extensions"),
    ('syntax = "proto3";\nservice S { rpc Do (A) returns (A); }', 2, "services"),
    ('syntax = "proto3"; message A {\n Missing m = 1; }', 2, "unknown type Missing"),
    ('syntax = "proto3"; message A {\n int32 a = 1 }', 2, "expected ';', found '}'"),
    ('syntax = "proto3"; message A {\n int32 a = 1;', 2, "expected a field, found end of file"),
    ('syntax = "proto3"; message A {\n int32 a = 0; }', 2, "field number 0 is out of range"),
    ('syntax = "proto3"; message A {\n int32 a = 19500; }', 2, "reserved for protobuf itself"),
    ('syntax = "proto3"; message A { int32 a = 1;\n string a = 2; }', 2, "A.a is declared twice"),
    ('syntax = "proto3"; message A { int32 a = 1;\n string b = 1; }', 2, "already used by a"),
    ('syntax = "proto3"; message A { reserved 3;\n int32 a = 3; }', 2, "reserved name or number"),
    ('syntax = "proto3"; enum E {\n A = 1; }', 2, "first value of enum E must be 0"),
    ('syntax = "proto3"; message A {\n map<double, string> m = 1; }', 2, "cannot be a map key"),
    (
        'syntax = "proto3"; message A { oneof o {\n repeated int32 r = 1; } }',
        2,
        "cannot be repeated",
    ),
    ('syntax = "proto3";\npackage a; package b;', 2, "package may be given only once"),
    ('syntax = "proto3";\nmesage A {}', 2, "expected a message or enum, found 'mesage'"),
]


@pytest.mark.parametrize(("text", "line", "reason"), BAD_SCHEMAS)
def test_bad_schemas_are_refused_with_reason_and_line(text: str, line: int, reason: str) -> None:
    """Each refused construct raises a SchemaError naming the file, the line and why."""
    with pytest.raises(SchemaError) as caught:
        compile_proto({"bad.proto": text})
    assert isinstance(caught.value, ValueError)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"bad.proto, line {line}: ")
    assert reason in caught.value.reason


def test_imports_still_need_a_proto3_file() -> None:
    """allow_imports relaxes imports and options only: required fields stay refused."""
    with pytest.raises(SchemaError, match="required fields"):
        compile_proto(
            {"a.proto": 'syntax = "proto3"; message A { required int32 a = 1; }'},
            allow_imports=True,
        )
