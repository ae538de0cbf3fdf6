"""
A recursive-descent parser from proto3 text to a
C{descriptor_pb2.FileDescriptorProto}.

Type names are left for L{gateway.protobuf.schema} to resolve across files
(the parser records each reference with its scope and line).  With
C{allow_imports} (the fixed files shipped with the gateway) imports and
options are accepted, options ignored; without it (schemas uploaded with a
profile) both are refused, as ThingsBoard's C{validateProtoSchema} does.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from google.protobuf import descriptor_pb2

from gateway.protobuf.errors import SchemaError
from gateway.protobuf.lexer import Token, tokenise

__all__ = ["ParsedFile", "TypeRef", "parse", "MAX_FIELD_NUMBER"]

_F = descriptor_pb2.FieldDescriptorProto
MAX_FIELD_NUMBER = 536_870_911
_RESERVED_FOR_PROTOBUF = range(19_000, 20_000)
_LABELS = ("optional", "repeated", "required")

SCALARS: dict[str, _F.Type.ValueType] = {
    "double": _F.TYPE_DOUBLE,
    "float": _F.TYPE_FLOAT,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "sint32": _F.TYPE_SINT32,
    "sint64": _F.TYPE_SINT64,
    "fixed32": _F.TYPE_FIXED32,
    "fixed64": _F.TYPE_FIXED64,
    "sfixed32": _F.TYPE_SFIXED32,
    "sfixed64": _F.TYPE_SFIXED64,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
# Map keys: any integral or string scalar (not floating point, bytes, enums or messages).
_MAP_KEYS = frozenset(SCALARS) - {"double", "float", "bytes"}


@attrs.frozen
class TypeRef:
    """A field's message or enum type, named as written, to resolve from C{scope}."""

    field: descriptor_pb2.FieldDescriptorProto
    scope: str
    name: str
    line: int


@attrs.frozen
class ParsedFile:
    """One file's descriptor, its imports (name, line) and its unresolved type names."""

    proto: descriptor_pb2.FileDescriptorProto
    imports: list[tuple[str, int]]
    refs: list[TypeRef]


def parse(name: str, text: str, *, allow_imports: bool) -> ParsedFile:
    """Parse the proto3 file C{name}; raise L{SchemaError} on anything refused."""
    return _Parser(name, text, allow_imports).file()


def _camel(name: str) -> str:
    """protoc's map entry naming: C{my_map} becomes C{MyMap}."""
    parts = name.split("_")
    return "".join(p[:1].upper() + p[1:] for p in parts)


class _Parser:
    def __init__(self, name: str, text: str, allow_imports: bool) -> None:
        self._name = name
        self._tokens = list(tokenise(text, name))
        self._pos = 0
        self._allow = allow_imports
        self._proto = descriptor_pb2.FileDescriptorProto(name=name, syntax="proto3")
        self._imports: list[tuple[str, int]] = []
        self._refs: list[TypeRef] = []

    # -- token helpers

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._pos + ahead, len(self._tokens) - 1)]

    def _next(self) -> Token:
        token = self._peek()
        self._pos += 1
        return token

    def _fail(self, reason: str, token: Token | None = None) -> SchemaError:
        return SchemaError(reason, file=self._name, line=(token or self._peek()).line)

    def _describe(self, token: Token) -> str:
        return "end of file" if token.kind == "end" else repr(token.text)

    def _expect(self, text: str) -> Token:
        token = self._next()
        if token.text != text or token.kind in ("string", "end"):
            raise self._fail(f"expected {text!r}, found {self._describe(token)}", token)
        return token

    def _accept(self, text: str) -> bool:
        token = self._peek()
        if token.text == text and token.kind not in ("string", "end"):
            self._pos += 1
            return True
        return False

    def _ident(self, what: str) -> str:
        token = self._next()
        if token.kind != "ident":
            raise self._fail(f"expected {what}, found {self._describe(token)}", token)
        return token.text

    def _full_ident(self, what: str) -> str:
        parts = [self._ident(what)]
        while self._accept("."):
            parts.append(self._ident(what))
        return ".".join(parts)

    def _type_name(self) -> str:
        lead = "." if self._accept(".") else ""
        return lead + self._full_ident("a type name")

    def _string(self, what: str) -> str:
        token = self._next()
        if token.kind != "string":
            raise self._fail(f"expected {what} (a quoted string), found {self._describe(token)}")
        return token.value

    def _int(self, what: str) -> int:
        negative = self._accept("-")
        token = self._next()
        text = token.text
        try:
            if token.kind != "number":
                raise ValueError(text)
            if text.lower().startswith("0x"):
                value = int(text, 16)
            elif len(text) > 1 and text.startswith("0"):
                value = int(text, 8)
            else:
                value = int(text, 10)
        except ValueError:
            found = self._describe(token)
            raise self._fail(f"expected {what} (an integer), found {found}", token) from None
        return -value if negative else value

    def _keyword_at(self, word: str) -> bool:
        token = self._peek()
        return token.kind == "ident" and token.text == word

    def _skip_statement(self) -> None:
        """Skip to the end of an ignored option, across any braces inside it."""
        depth = 0
        while True:
            token = self._next()
            if token.kind == "end":
                raise self._fail("expected ';', found end of file", token)
            if token.kind == "symbol" and token.text == "{":
                depth += 1
            elif token.kind == "symbol" and token.text == "}":
                depth -= 1
            elif token.kind == "symbol" and token.text == ";" and depth <= 0:
                return

    # -- file level

    def file(self) -> ParsedFile:
        self._syntax()
        while self._peek().kind != "end":
            self._top_level()
        return ParsedFile(self._proto, self._imports, self._refs)

    def _syntax(self) -> None:
        if self._keyword_at("edition"):
            raise self._fail('editions are not supported: the schema must be syntax = "proto3"')
        if not self._keyword_at("syntax"):
            raise self._fail('the schema must begin with syntax = "proto3"')
        self._next()
        self._expect("=")
        token = self._peek()
        syntax = self._string("the syntax")
        if syntax != "proto3":
            raise self._fail(f'only syntax = "proto3" is supported, not {syntax!r}', token)
        self._expect(";")

    def _top_level(self) -> None:
        token = self._peek()
        if self._accept(";"):
            return
        word = token.text if token.kind == "ident" else ""
        handlers: dict[str, Callable[[], None]] = {
            "import": self._import,
            "package": self._package,
            "option": self._option,
            "message": lambda: self._message(self._proto.message_type.add(), self._proto.package),
            "enum": lambda: self._enum(self._proto.enum_type.add()),
            "service": lambda: self._refuse("services are not supported"),
            "extend": lambda: self._refuse("extensions are not supported"),
            "syntax": lambda: self._refuse("syntax may be given only once, first"),
        }
        handler = handlers.get(word)
        if handler is None:
            raise self._fail(f"expected a message or enum, found {self._describe(token)}")
        handler()

    def _refuse(self, reason: str) -> None:
        raise self._fail(reason)

    def _import(self) -> None:
        token = self._next()
        if not self._allow:
            raise self._fail("imports are not allowed in a profile schema", token)
        if self._keyword_at("public") or self._keyword_at("weak"):
            self._next()
        name = self._string("the imported file")
        self._expect(";")
        self._imports.append((name, token.line))

    def _package(self) -> None:
        token = self._next()
        if self._proto.HasField("package"):
            raise self._fail("package may be given only once", token)
        self._proto.package = self._full_ident("a package name")
        self._expect(";")
        if self._proto.message_type or self._proto.enum_type:
            raise self._fail("package must come before the file's messages and enums", token)

    def _option(self) -> None:
        token = self._next()
        if not self._allow:
            raise self._fail("options are not allowed in a profile schema", token)
        self._skip_statement()

    # -- messages

    def _message(self, message: descriptor_pb2.DescriptorProto, parent: str) -> None:
        self._next()  # "message"
        message.name = self._ident("a message name")
        scope = f"{parent}.{message.name}" if parent else message.name
        self._expect("{")
        synthetic: list[descriptor_pb2.FieldDescriptorProto] = []
        while not self._accept("}"):
            self._message_element(message, scope, synthetic)
        # protoc puts proto3 optional's synthetic oneofs after every real one.
        for field in synthetic:
            field.oneof_index = len(message.oneof_decl)
            message.oneof_decl.add(name=self._synthetic_name(message, field.name))
        self._check_message(message)

    def _synthetic_name(self, message: descriptor_pb2.DescriptorProto, field: str) -> str:
        taken = {o.name for o in message.oneof_decl} | {f.name for f in message.field}
        name = "_" + field
        while name in taken:
            name = "X" + name
        return name

    def _message_element(
        self,
        message: descriptor_pb2.DescriptorProto,
        scope: str,
        synthetic: list[descriptor_pb2.FieldDescriptorProto],
    ) -> None:
        token = self._peek()
        word = token.text if token.kind == "ident" else ""
        declares = self._peek(1).kind == "ident" and self._peek(2).text == "{"
        if self._accept(";"):
            return
        if word == "message" and declares:
            self._message(message.nested_type.add(), scope)
        elif word == "enum" and declares:
            self._enum(message.enum_type.add())
        elif word == "oneof" and declares:
            self._oneof(message, scope)
        elif word == "option":
            self._option()
        elif word == "reserved" and self._peek(1).kind in ("number", "string"):
            self._reserved(message)
        elif word == "extensions" and self._peek(1).kind == "number":
            raise self._fail("extensions are not supported")
        elif word == "extend" and declares:
            raise self._fail("extensions are not supported")
        elif word == "map" and self._peek(1).text == "<":
            self._map(message, scope)
        elif token.kind == "ident" or token.text == ".":
            field = self._field(message.field.add(), scope, in_oneof=False)
            if field.proto3_optional:
                synthetic.append(field)
        else:
            raise self._fail(f"expected a field, found {self._describe(token)}")

    def _field(
        self, field: descriptor_pb2.FieldDescriptorProto, scope: str, *, in_oneof: bool
    ) -> descriptor_pb2.FieldDescriptorProto:
        start = self._peek()
        label = ""
        # A label is a word before a type and a name ("string optional = 1" has none).
        if start.text in _LABELS and start.kind == "ident" and self._peek(2).text != "=":
            label = start.text
            if label == "required":
                raise self._fail("required fields are not allowed in proto3", start)
            if in_oneof:
                raise self._fail(f"a oneof's fields cannot be {label}", start)
            self._next()
        field.label = _F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL
        if label == "optional":
            field.proto3_optional = True
        type_token = self._peek()
        if type_token.text == "group" and self._peek(1).kind == "ident":
            raise self._fail("groups are not supported in proto3", type_token)
        type_name = self._type_name()
        field.name = self._ident("a field name")
        self._expect("=")
        field.number = self._field_number()
        self._field_options()
        self._expect(";")
        if type_name in SCALARS:
            field.type = SCALARS[type_name]
        else:
            self._refs.append(TypeRef(field, scope, type_name, type_token.line))
        return field

    def _field_number(self) -> int:
        token = self._peek()
        number = self._int("a field number")
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise self._fail(f"field number {number} is out of range 1..{MAX_FIELD_NUMBER}", token)
        if number in _RESERVED_FOR_PROTOBUF:
            raise self._fail(f"field number {number} is reserved for protobuf itself", token)
        return number

    def _field_options(self) -> None:
        """C{[name = value, ...]}: refused in profile schemas, ignored otherwise."""
        if not self._accept("["):
            return
        depth = 1
        expect_name = True
        while depth:
            token = self._next()
            if token.kind == "end":
                raise self._fail("expected ']', found end of file", token)
            if depth == 1 and expect_name:
                if token.text == "default":
                    raise self._fail("default values are not allowed in proto3", token)
                if not self._allow:
                    raise self._fail("field options are not allowed in a profile schema", token)
                expect_name = False
            if token.kind == "symbol" and token.text in "[{(":
                depth += 1
            elif token.kind == "symbol" and token.text in "]})":
                depth -= 1
            elif token.kind == "symbol" and token.text == "," and depth == 1:
                expect_name = True

    def _oneof(self, message: descriptor_pb2.DescriptorProto, scope: str) -> None:
        self._next()  # "oneof"
        index = len(message.oneof_decl)
        message.oneof_decl.add(name=self._ident("a oneof name"))
        self._expect("{")
        while not self._accept("}"):
            if self._accept(";"):
                continue
            if self._keyword_at("option"):
                self._option()
                continue
            if self._keyword_at("map") and self._peek(1).text == "<":
                raise self._fail("a oneof cannot hold a map")
            field = self._field(message.field.add(), scope, in_oneof=True)
            field.oneof_index = index
        if not any(f.HasField("oneof_index") and f.oneof_index == index for f in message.field):
            raise self._fail(f"oneof {message.oneof_decl[index].name} has no fields")

    def _map(self, message: descriptor_pb2.DescriptorProto, scope: str) -> None:
        self._next()  # "map"
        self._expect("<")
        key_token = self._peek()
        key = self._type_name()
        if key not in _MAP_KEYS:
            raise self._fail(f"{key} cannot be a map key: integers and strings only", key_token)
        self._expect(",")
        value_token = self._peek()
        value = self._type_name()
        self._expect(">")
        field = message.field.add(label=_F.LABEL_REPEATED, type=_F.TYPE_MESSAGE)
        field.name = self._ident("a field name")
        self._expect("=")
        field.number = self._field_number()
        self._field_options()
        self._expect(";")
        entry = message.nested_type.add(name=_camel(field.name) + "Entry")
        entry.options.map_entry = True
        field.type_name = f".{scope}.{entry.name}"
        entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=SCALARS[key])
        value_field = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
        if value in SCALARS:
            value_field.type = SCALARS[value]
        else:
            self._refs.append(TypeRef(value_field, scope, value, value_token.line))

    def _reserved(self, message: descriptor_pb2.DescriptorProto) -> None:
        self._next()  # "reserved"
        while True:
            if self._peek().kind == "string":
                message.reserved_name.append(self._string("a reserved name"))
            else:
                start = self._int("a reserved field number")
                end = start
                if self._accept("to"):
                    end = MAX_FIELD_NUMBER if self._accept("max") else self._int("a field number")
                if not 1 <= start <= end <= MAX_FIELD_NUMBER:
                    raise self._fail(f"reserved range {start} to {end} is invalid")
                message.reserved_range.add(start=start, end=end + 1)
            if not self._accept(","):
                break
        self._expect(";")

    def _check_message(self, message: descriptor_pb2.DescriptorProto) -> None:
        """Duplicate and reserved names and numbers, told with the message's closing line."""
        names: set[str] = set()
        numbers: dict[int, str] = {}
        reserved = set(message.reserved_name)
        for field in message.field:
            if field.name in names:
                raise self._fail(f"{message.name}.{field.name} is declared twice", self._peek(-1))
            names.add(field.name)
            if field.number in numbers:
                raise self._fail(
                    f"{message.name}.{field.name} uses field number {field.number}, "
                    f"already used by {numbers[field.number]}",
                    self._peek(-1),
                )
            numbers[field.number] = field.name
            if field.name in reserved or any(
                r.start <= field.number < r.end for r in message.reserved_range
            ):
                raise self._fail(
                    f"{message.name}.{field.name} uses a reserved name or number", self._peek(-1)
                )

    # -- enums

    def _enum(self, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self._next()  # "enum"
        enum.name = self._ident("an enum name")
        self._expect("{")
        while not self._accept("}"):
            token = self._peek()
            if self._accept(";"):
                continue
            if self._keyword_at("option"):
                self._option()
                continue
            if self._keyword_at("reserved") and self._peek(1).kind != "ident":
                self._enum_reserved(enum)
                continue
            name = self._ident("an enum value")
            self._expect("=")
            number = self._int("an enum value's number")
            if not -(2**31) <= number < 2**31:
                raise self._fail(f"enum value {name} = {number} does not fit in 32 bits", token)
            if not enum.value and number != 0:
                raise self._fail(f"the first value of enum {enum.name} must be 0 in proto3", token)
            self._field_options()
            self._expect(";")
            enum.value.add(name=name, number=number)
        if not enum.value:
            raise self._fail(f"enum {enum.name} has no values", self._peek(-1))

    def _enum_reserved(self, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self._next()  # "reserved"
        while True:
            if self._peek().kind == "string":
                enum.reserved_name.append(self._string("a reserved name"))
            else:
                start = self._int("a reserved enum number")
                end = start
                if self._accept("to"):
                    end = 2**31 - 1 if self._accept("max") else self._int("an enum number")
                enum.reserved_range.add(start=start, end=end)  # inclusive for enums
            if not self._accept(","):
                break
        self._expect(";")
