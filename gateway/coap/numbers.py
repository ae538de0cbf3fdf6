"""
CoAP numbers: message types, codes, option numbers and their formats.

The code and option constants are txThings' (so resources written against
C{txthings.coap} keep working); this module adds what the engine needs to be
strict: option formats with length bounds, repeatability, and the
critical/unsafe bits of RFC 7252 §5.4.6.
"""

from __future__ import annotations

from typing import Final

from txthings import coap as tx

CON: Final = tx.CON
NON: Final = tx.NON
ACK: Final = tx.ACK
RST: Final = tx.RST

EMPTY: Final = tx.EMPTY
GET: Final = tx.GET
POST: Final = tx.POST
PUT: Final = tx.PUT
DELETE: Final = tx.DELETE

CREATED: Final = tx.CREATED
DELETED: Final = tx.DELETED
VALID: Final = tx.VALID
CHANGED: Final = tx.CHANGED
CONTENT: Final = tx.CONTENT
CONTINUE: Final = tx.CONTINUE
BAD_REQUEST: Final = tx.BAD_REQUEST
UNAUTHORIZED: Final = tx.UNAUTHORIZED
BAD_OPTION: Final = tx.BAD_OPTION
FORBIDDEN: Final = tx.FORBIDDEN
NOT_FOUND: Final = tx.NOT_FOUND
METHOD_NOT_ALLOWED: Final = tx.METHOD_NOT_ALLOWED
NOT_ACCEPTABLE: Final = tx.NOT_ACCEPTABLE
REQUEST_ENTITY_INCOMPLETE: Final = tx.REQUEST_ENTITY_INCOMPLETE
REQUEST_ENTITY_TOO_LARGE: Final = tx.REQUEST_ENTITY_TOO_LARGE
UNSUPPORTED_CONTENT_FORMAT: Final = tx.UNSUPPORTED_CONTENT_FORMAT
INTERNAL_SERVER_ERROR: Final = tx.INTERNAL_SERVER_ERROR
NOT_IMPLEMENTED: Final = tx.NOT_IMPLEMENTED
SERVICE_UNAVAILABLE: Final = tx.SERVICE_UNAVAILABLE
GATEWAY_TIMEOUT: Final = tx.GATEWAY_TIMEOUT
PROXYING_NOT_SUPPORTED: Final = tx.PROXYING_NOT_SUPPORTED

IF_MATCH: Final = 1
URI_HOST: Final = 3
ETAG: Final = 4
IF_NONE_MATCH: Final = 5
OBSERVE: Final = 6
URI_PORT: Final = 7
LOCATION_PATH: Final = 8
URI_PATH: Final = 11
CONTENT_FORMAT: Final = 12
MAX_AGE: Final = 14
URI_QUERY: Final = 15
ACCEPT: Final = 17
LOCATION_QUERY: Final = 20
BLOCK2: Final = 23
BLOCK1: Final = 27
SIZE2: Final = 28
PROXY_URI: Final = 35
PROXY_SCHEME: Final = 39
SIZE1: Final = 60
NO_RESPONSE: Final = 258
REQUEST_TAG: Final = 292

#: Content-Formats (RFC 7252 §12.3 and the IANA registry).
TEXT_PLAIN: Final = 0
LINK_FORMAT: Final = 40
OCTET_STREAM: Final = 42
JSON: Final = 50
CBOR: Final = 60

UINT: Final = "uint"
STRING: Final = "string"
OPAQUE: Final = "opaque"
EMPTY_FORMAT: Final = "empty"
BLOCK: Final = "block"

#: number -> (format, min length, max length, repeatable)
OPTION_FORMATS: Final[dict[int, tuple[str, int, int, bool]]] = {
    IF_MATCH: (OPAQUE, 0, 8, True),
    URI_HOST: (STRING, 1, 255, False),
    ETAG: (OPAQUE, 1, 8, True),
    IF_NONE_MATCH: (EMPTY_FORMAT, 0, 0, False),
    OBSERVE: (UINT, 0, 3, False),
    URI_PORT: (UINT, 0, 2, False),
    LOCATION_PATH: (STRING, 0, 255, True),
    URI_PATH: (STRING, 0, 255, True),
    CONTENT_FORMAT: (UINT, 0, 2, False),
    MAX_AGE: (UINT, 0, 4, False),
    URI_QUERY: (STRING, 0, 255, True),
    ACCEPT: (UINT, 0, 2, False),
    LOCATION_QUERY: (STRING, 0, 255, True),
    BLOCK2: (BLOCK, 0, 3, False),
    BLOCK1: (BLOCK, 0, 3, False),
    SIZE2: (UINT, 0, 4, False),
    PROXY_URI: (STRING, 1, 1034, False),
    PROXY_SCHEME: (STRING, 1, 255, False),
    SIZE1: (UINT, 0, 4, False),
    NO_RESPONSE: (UINT, 0, 1, False),
    REQUEST_TAG: (OPAQUE, 0, 8, True),
}


def is_request(code: int) -> bool:
    return 1 <= code < 32


def is_response(code: int) -> bool:
    return 64 <= code < 192


def code_text(code: int) -> str:
    """C{69} -> C{"2.05"}."""
    return f"{code >> 5}.{code & 31:02d}"


def block_size(szx: int) -> int:
    return 1 << (szx + 4)


def size_exponent(size: int) -> int:
    """The SZX of a block size that is a power of two from 16 to 1024."""
    return size.bit_length() - 5
