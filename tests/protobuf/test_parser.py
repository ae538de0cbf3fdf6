"""L{gateway.protobuf.parser}: proto3 text into a FileDescriptorProto as protoc builds it."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from gateway.protobuf.parser import MAX_FIELD_NUMBER, parse

_F = descriptor_pb2.FieldDescriptorProto


def _one(text: str) -> descriptor_pb2.DescriptorProto:
    parsed = parse("a.proto", 'syntax = "proto3"; package p;\n' + text, allow_imports=False)
    assert parsed.proto.syntax == "proto3" and parsed.proto.package == "p"
    return parsed.proto.message_type[0]


def test_labels_and_scalars() -> None:
    """Plain fields are LABEL_OPTIONAL without presence, repeated ones LABEL_REPEATED."""
    message = _one("message M { sint64 a = 1; repeated bytes b = 2; string optional = 3; }")
    a, b, c = message.field
    assert (a.name, a.number, a.type, a.label) == ("a", 1, _F.TYPE_SINT64, _F.LABEL_OPTIONAL)
    assert not a.proto3_optional
    assert (b.type, b.label) == (_F.TYPE_BYTES, _F.LABEL_REPEATED)
    assert (c.name, c.type) == ("optional", _F.TYPE_STRING)  # a keyword is also a name


def test_proto3_optional_gets_synthetic_oneofs_after_real_ones() -> None:
    """Each optional field gets its own '_name' oneof, placed after every declared oneof."""
    message = _one("message M { optional int32 x = 1; oneof pick { string s = 2; int32 i = 3; } }")
    x, s, i = message.field
    assert [o.name for o in message.oneof_decl] == ["pick", "_x"]
    assert x.proto3_optional and x.oneof_index == 1
    assert s.oneof_index == i.oneof_index == 0 and not s.proto3_optional


def test_map_becomes_a_repeated_entry_message() -> None:
    """map<K,V> is a repeated field of a nested map_entry message named as protoc names it."""
    message = _one("message M { map<string, Inner> by_name = 4; message Inner {} }")
    (field,) = message.field
    entry = next(n for n in message.nested_type if n.name == "ByNameEntry")
    assert (field.label, field.type, field.type_name) == (
        _F.LABEL_REPEATED,
        _F.TYPE_MESSAGE,
        ".p.M.ByNameEntry",
    )
    assert entry.options.map_entry
    assert [(f.name, f.number) for f in entry.field] == [("key", 1), ("value", 2)]
    assert entry.field[0].type == _F.TYPE_STRING


def test_reserved_ranges_and_names() -> None:
    """Reserved numbers become half-open ranges (max is the largest field number), names a list."""
    message = _one('message M { reserved 2, 5 to 7, 100 to max; reserved "old", "gone"; }')
    assert [(r.start, r.end) for r in message.reserved_range] == [
        (2, 3),
        (5, 8),
        (100, MAX_FIELD_NUMBER + 1),
    ]
    assert list(message.reserved_name) == ["old", "gone"]


def test_type_references_are_recorded_with_scope_and_line() -> None:
    """Message and enum types are left unresolved, with the scope they are named from."""
    parsed = parse(
        "a.proto",
        'syntax = "proto3"; package p;\nmessage M {\n  message N { .q.T t = 1; }\n  E e = 2;\n}',
        allow_imports=False,
    )
    assert [(r.scope, r.name, r.line) for r in parsed.refs] == [
        ("p.M.N", ".q.T", 3),
        ("p.M", "E", 4),
    ]


def test_imports_and_options_allowed_for_fixed_files() -> None:
    """With allow_imports, imports are listed and file, message and field options ignored."""
    parsed = parse(
        "a.proto",
        'syntax = "proto3";\nimport "b.proto";\noption java_package = "x.y";\n'
        "option (my.opt) = { a: 1; };\n"
        "message M { option deprecated = true; repeated int32 v = 1 [packed = true]; }\n"
        "enum E { option allow_alias = true; Z = 0 [deprecated = true]; }",
        allow_imports=True,
    )
    assert parsed.imports == [("b.proto", 2)]
    assert not parsed.proto.options.HasField("java_package")
    assert [f.name for f in parsed.proto.message_type[0].field] == ["v"]
    assert [v.name for v in parsed.proto.enum_type[0].value] == ["Z"]
