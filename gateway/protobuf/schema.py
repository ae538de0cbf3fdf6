"""
Compile proto3 schemas with the protobuf runtime alone (no protoc).

L{compile_proto} parses each file (L{gateway.protobuf.parser}), resolves type
names by protobuf's scoping rules, builds the files into a private
C{DescriptorPool} (one per call, so profiles never clash on names) and hands
out message classes.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from gateway.protobuf.errors import SchemaError
from gateway.protobuf.parser import ParsedFile, TypeRef, parse

__all__ = ["SchemaError", "ProtoFiles", "compile_proto"]

_F = descriptor_pb2.FieldDescriptorProto


@attrs.frozen
class ProtoFiles:
    """The compiled files of one L{compile_proto} call."""

    _pool: descriptor_pool.DescriptorPool
    # Each file's last top-level message (full name), None when it has none.
    _last: Mapping[str, str | None]

    def message(self, full_name: str) -> type[Message]:
        """The class of message C{full_name} (C{package.Message.Nested}); KeyError if none."""
        try:
            descriptor = self._pool.FindMessageTypeByName(full_name)
        except KeyError:
            raise KeyError(f"no message {full_name}") from None
        return message_factory.GetMessageClass(descriptor)

    def last_message(self, file_name: str) -> type[Message]:
        """The class of file C{file_name}'s last top-level message; KeyError if none."""
        if file_name not in self._last:
            raise KeyError(f"no file {file_name}")
        full_name = self._last[file_name]
        if full_name is None:
            raise KeyError(f"{file_name} declares no message")
        return self.message(full_name)


def compile_proto(files: Mapping[str, str], *, allow_imports: bool = False) -> ProtoFiles:
    """
    Compile C{files} (name to proto3 text); imports resolve among them when
    C{allow_imports}.  Raise L{SchemaError} saying why and where when one is
    refused.
    """
    parsed = {name: parse(name, text, allow_imports=allow_imports) for name, text in files.items()}
    symbols = {name: _symbols(p.proto) for name, p in parsed.items()}
    for name, p in parsed.items():
        visible = dict(symbols[name])
        for imported, line in p.imports:
            if imported not in parsed:
                raise SchemaError(f"imported file {imported!r} is not given", file=name, line=line)
            visible.update(symbols[imported])
            p.proto.dependency.append(imported)
        for ref in p.refs:
            _resolve(ref, visible, name)
    pool = descriptor_pool.DescriptorPool()
    for name in _build_order(parsed):
        try:
            pool.Add(parsed[name].proto)
        except (TypeError, ValueError) as e:
            raise SchemaError(str(e), file=name) from None
    last = {
        name: _full(p.proto.package, p.proto.message_type[-1].name)
        if p.proto.message_type
        else None
        for name, p in parsed.items()
    }
    return ProtoFiles(pool, last)


def _full(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _symbols(proto: descriptor_pb2.FileDescriptorProto) -> dict[str, str]:
    """Every package prefix, message and enum of a file: full name to kind."""
    symbols: dict[str, str] = {}
    parts = proto.package.split(".") if proto.package else []
    for i in range(1, len(parts) + 1):
        symbols[".".join(parts[:i])] = "package"

    def add(scope: str, message: descriptor_pb2.DescriptorProto) -> None:
        full = _full(scope, message.name)
        symbols[full] = "message"
        for enum in message.enum_type:
            symbols[_full(full, enum.name)] = "enum"
        for nested in message.nested_type:
            add(full, nested)

    for enum in proto.enum_type:
        symbols[_full(proto.package, enum.name)] = "enum"
    for message in proto.message_type:
        add(proto.package, message)
    return symbols


def _resolve(ref: TypeRef, symbols: Mapping[str, str], file: str) -> None:
    """
    Resolve as protoc does: a leading dot is fully qualified; otherwise the
    name's first part is looked for from the innermost scope outwards, and
    once found as a message or package the rest must lie under it.
    """
    name = ref.name
    if name.startswith("."):
        found: str | None = name[1:] if symbols.get(name[1:]) in ("message", "enum") else None
    else:
        found = _lookup(name, ref.scope, symbols)
    if found is None:
        raise SchemaError(f"unknown type {name}", file=file, line=ref.line)
    ref.field.type = _F.TYPE_MESSAGE if symbols[found] == "message" else _F.TYPE_ENUM
    ref.field.type_name = "." + found


def _lookup(name: str, scope: str, symbols: Mapping[str, str]) -> str | None:
    first, _, rest = name.partition(".")
    parts = scope.split(".") if scope else []
    for depth in range(len(parts), -1, -1):
        outer = ".".join(parts[:depth])
        kind = symbols.get(_full(outer, first))
        if kind is None:
            continue
        if not rest:
            if kind in ("message", "enum"):
                return _full(outer, first)
        elif kind in ("message", "package"):
            full = _full(outer, name)
            return full if symbols.get(full) in ("message", "enum") else None
    return None


def _build_order(parsed: Mapping[str, ParsedFile]) -> list[str]:
    """The files, each after those it imports; an import cycle is refused."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, line: int | None, via: str | None) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise SchemaError(f"import cycle through {name}", file=via, line=line)
        state[name] = "visiting"
        for imported, at in parsed[name].imports:
            visit(imported, at, name)
        state[name] = "done"
        order.append(name)

    for name in parsed:
        visit(name, None, None)
    return order
